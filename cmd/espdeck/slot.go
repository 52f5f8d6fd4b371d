package main

func runSlot(c *cli, args []string) int { return notYet(c, "slot") }
