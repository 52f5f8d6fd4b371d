package main

func runMonitor(c *cli, args []string) int { return notYet(c, "monitor") }
