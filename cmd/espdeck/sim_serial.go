package main

func runSimSerial(c *cli, args []string) int { return notYet(c, "sim serial") }
