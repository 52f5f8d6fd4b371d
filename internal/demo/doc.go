// Package demo builds the simulated fleet behind `espdeck --demo`: synthetic
// firmware images, a realistic flash layout for the simulated serial board,
// and the set of simulated OTA devices. Everything it starts listens on
// loopback or a pseudo-terminal only; it never runs an mDNS responder.
package demo
