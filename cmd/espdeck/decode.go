package main

func runDecode(c *cli, args []string) int { return notYet(c, "decode") }
