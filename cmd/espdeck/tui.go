package main

func runTUI(c *cli, args []string) int { return notYet(c, "the TUI") }
