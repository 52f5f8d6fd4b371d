package main

func runSim(c *cli, args []string) int { return notYet(c, "sim") }
