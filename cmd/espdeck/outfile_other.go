//go:build !unix

package main

func isNotSyncable(error) bool { return true }
