//go:build !unix

package registry

// cpuTime is not measured on this platform.
func cpuTime() int64 { return -1 }
