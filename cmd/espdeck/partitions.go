package main

func runPartitions(c *cli, args []string) int { return notYet(c, "partitions") }
