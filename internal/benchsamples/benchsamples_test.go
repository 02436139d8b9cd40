package benchsamples

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(Env, dir)
	Write(t, "x", []time.Duration{1500 * time.Microsecond, 2 * time.Millisecond})
	b, err := os.ReadFile(filepath.Join(dir, "x.samples"))
	if err != nil || string(b) != "1.500\n2.000\n" {
		t.Fatalf("wrote %q, %v", b, err)
	}
	t.Setenv(Env, "")
	Write(t, "y", []time.Duration{time.Millisecond})
	if _, err := os.Stat(filepath.Join(dir, "y.samples")); !os.IsNotExist(err) {
		t.Fatalf("wrote samples with %s unset", Env)
	}
}
