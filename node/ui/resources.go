package ui

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Resources is what the node's process uses, for the overview. A negative
// number is one this system does not tell.
type Resources struct {
	RSS        int64         // bytes of memory resident (Linux: /proc/self/statm)
	Heap       int64         // bytes of live Go heap objects
	GoMemory   int64         // bytes the Go runtime holds from the system
	Goroutines int64         // goroutines running
	CPU        time.Duration // user and system CPU time since the start
	Files      int           // open file descriptors, sockets included
	Sockets    int           // of them, sockets: the peers' connections, the API's
	Peers      int           // connected peers
	Datastore  int64         // bytes the datastore takes on disk
}

// readResources reads what this process uses: the Go runtime's metrics,
// /proc/self where there is one, and the datastore's size under dir (""
// for unknown).
func (s *Server) readResources(dir string, peers int) Resources {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/sched/goroutines:goroutines"},
	}
	metrics.Read(samples)
	u := func(i int) int64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return -1
		}
		return int64(samples[i].Value.Uint64())
	}
	r := Resources{Heap: u(0), GoMemory: u(1), Goroutines: u(2), CPU: cpuTime(), RSS: rss(), Peers: peers, Datastore: -1}
	r.Files, r.Sockets = openFiles()
	if dir != "" {
		r.Datastore = s.du.size(dir, s.cfg.Now())
	}
	return r
}

// rss is the resident set size from /proc/self/statm, or -1.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return -1
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return -1
	}
	return pages * int64(os.Getpagesize())
}

// openFiles counts /proc/self/fd, and the sockets among them; -1, -1
// without /proc.
func openFiles() (files, sockets int) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1, -1
	}
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil {
			files++
			if strings.HasPrefix(l, "socket:") {
				sockets++
			}
		}
	}
	// One of them was the directory being read.
	return max(files-1, 0), sockets
}

// diskUsage caches a directory's size on disk: walking a datastore is
// cheap but not free, and the overview refreshes on every event.
type diskUsage struct {
	mu    sync.Mutex
	dir   string
	bytes int64
	at    time.Time
}

const diskUsageAge = 30 * time.Second

func (d *diskUsage) size(dir string, now time.Time) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dir == dir && now.Sub(d.at) < diskUsageAge && !now.Before(d.at) {
		return d.bytes
	}
	var total int64
	err := filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil // a file the datastore just removed
		}
		if e.Type().IsRegular() {
			if info, err := e.Info(); err == nil {
				total += diskBytes(info)
			}
		}
		return nil
	})
	if err != nil {
		return -1
	}
	if _, err := os.Stat(dir); err != nil {
		return -1
	}
	d.dir, d.bytes, d.at = dir, total, now
	return total
}

// bytesIEC writes a size in bytes for people: 0 B, 812 KiB, 41.3 MiB;
// "unknown" when negative.
func bytesIEC(n int64) string {
	switch {
	case n < 0:
		return "unknown"
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	}
}

// cpuSeconds writes a CPU time for people: 1.24 s, 3 min 12 s.
func cpuSeconds(d time.Duration) string {
	switch {
	case d < 0:
		return "unknown"
	case d < time.Minute:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%d min %d s", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
	}
}
