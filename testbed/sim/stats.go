package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Dist summarises a set of durations, in milliseconds.
type Dist struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// Summarize computes the distribution of ds (nearest-rank percentiles).
func Summarize(ds []time.Duration) Dist {
	if len(ds) == 0 {
		return Dist{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return ms(s[min(max(i, 0), len(s)-1)])
	}
	return Dist{Count: len(s), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(s[len(s)-1])}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// String is "p50 12.3 / p90 … / p99 … / max … ms (n=…)".
func (d Dist) String() string {
	if d.Count == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %.0f / p90 %.0f / p99 %.0f / max %.0f ms (n=%d)", d.P50, d.P90, d.P99, d.Max, d.Count)
}

// Sample files, one value in milliseconds per line, named
// sim-<figure>.samples. The bench report reads them by these names.
const (
	FigureAdvertPropagation = "sim-advert-propagation"
	FigureDelegation        = "sim-delegation"
	FigureRecordConvergence = "sim-record-convergence"
	FigureChurnCatchUp      = "sim-churn-catchup"
	SummaryFile             = "sim-summary.json"
)

// WriteSamples writes the report's raw samples and its summary to dir.
func (r *Report) WriteSamples(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, ds := range map[string][]time.Duration{
		FigureAdvertPropagation: r.samples.adverts,
		FigureDelegation:        r.samples.delegations,
		FigureRecordConvergence: r.samples.records,
		FigureChurnCatchUp:      r.samples.churn,
	} {
		var b strings.Builder
		for _, d := range ds {
			fmt.Fprintf(&b, "%.3f\n", ms(d))
		}
		if err := os.WriteFile(filepath.Join(dir, name+".samples"), []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, SummaryFile), append(raw, '\n'), 0o644)
}

// warnCounter is the nodes' log handler: it counts warnings and errors by
// message (hundreds of nodes would drown a test log) and drops the rest.
type warnCounter struct {
	mu     sync.Mutex
	counts map[string]int
	attrs  []slog.Attr
}

func newWarnCounter() *warnCounter { return &warnCounter{counts: map[string]int{}} }

func (w *warnCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (w *warnCounter) Handle(_ context.Context, r slog.Record) error {
	key := r.Level.String() + " " + r.Message
	w.mu.Lock()
	w.counts[key]++
	w.mu.Unlock()
	return nil
}

// WithAttrs and WithGroup share the counts: a message counts the same
// whichever subsystem logged it.
func (w *warnCounter) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnCounter) WithGroup(string) slog.Handler      { return w }

// snapshot returns the counts so far.
func (w *warnCounter) snapshot() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]int, len(w.counts))
	for k, v := range w.counts {
		out[k] = v
	}
	return out
}
