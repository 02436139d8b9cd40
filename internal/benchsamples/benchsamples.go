// Package benchsamples writes a benchmark's raw samples for the benchmark
// report (cmd/agora-bench), which sets AGORA_BENCH_SAMPLES to a directory
// and draws each <name>.samples file as a distribution.
package benchsamples

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Env names the directory the samples go to; unset, Write does nothing.
const Env = "AGORA_BENCH_SAMPLES"

// Write stores ds as $AGORA_BENCH_SAMPLES/<name>.samples, one value in
// milliseconds a line. A failure to write is logged, not fatal: the
// benchmark's own figures still stand.
func Write(tb testing.TB, name string, ds []time.Duration) {
	dir := os.Getenv(Env)
	if dir == "" || len(ds) == 0 {
		return
	}
	var out strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&out, "%.3f\n", float64(d)/float64(time.Millisecond))
	}
	if err := os.WriteFile(filepath.Join(dir, name+".samples"), []byte(out.String()), 0o644); err != nil {
		tb.Logf("samples: %v", err)
	}
}
