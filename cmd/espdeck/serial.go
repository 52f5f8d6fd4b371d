package main

func runSerial(c *cli, args []string) int { return notYet(c, "serial") }
