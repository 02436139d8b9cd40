//go:build unix

package ui

import (
	"io/fs"
	"syscall"
	"time"
)

// cpuTime is the process's user and system CPU time so far, or -1.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// diskBytes is what a file takes on disk: its blocks, not its length, for
// the datastore's sparse, preallocated files.
func diskBytes(info fs.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blocks) * 512
	}
	return info.Size()
}
