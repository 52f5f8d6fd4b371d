package main

func runSimOTA(c *cli, args []string) int { return notYet(c, "sim ota") }
