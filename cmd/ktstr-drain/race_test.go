//go:build race

package main

// raceEnabled: the race detector slows every process down several times;
// the cross-process tests do less work under it.
const raceEnabled = true
