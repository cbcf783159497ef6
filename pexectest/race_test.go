//go:build race

package pexectest_test

const raceEnabled = true
