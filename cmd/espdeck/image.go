package main

func runImage(c *cli, args []string) int { return notYet(c, "image") }
