//go:build !unix

package ui

import (
	"io/fs"
	"runtime/metrics"
	"time"
)

// cpuTime is the Go runtime's estimate of the process's CPU time so far
// (busy, not idle), or -1.
func cpuTime() time.Duration {
	s := []metrics.Sample{{Name: "/cpu/classes/total:cpu-seconds"}, {Name: "/cpu/classes/idle:cpu-seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64 || s[1].Value.Kind() != metrics.KindFloat64 {
		return -1
	}
	return time.Duration((s[0].Value.Float64() - s[1].Value.Float64()) * float64(time.Second))
}

// diskBytes is what a file takes on disk, as far as its length tells.
func diskBytes(info fs.FileInfo) int64 { return info.Size() }
