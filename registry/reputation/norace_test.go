//go:build !race

package reputation

const raceEnabled = false
