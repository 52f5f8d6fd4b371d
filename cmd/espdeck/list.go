package main

func runList(c *cli, args []string) int { return notYet(c, "list") }
