package main

func runOTA(c *cli, args []string) int { return notYet(c, "ota") }
