package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

// The idle-footprint benchmark compares an idle `agora daemon` (empty, and
// with 10,000 records in its datastore) against a raw baseline measured in
// the same run: a bare go-libp2p host with a DHT and gossipsub, which is the
// floor any node on this stack pays.
//
//	go test -run '^$' -bench IdleFootprint -benchtime 1x ./cmd/agora
//
// AGORA_BENCH_IDLE overrides the 60 s idle window.

const baselineEnv = "AGORA_BENCH_BASELINE_HOST"

// runBaselineHost is the baseline process: a bare host with DHT and
// gossipsub on one topic, idle until killed.
func runBaselineHost() {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kad, err := dht.New(h, dht.ProtocolPrefix("/agora"), dht.Mode(dht.ModeServer))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer kad.Close()
	ps, err := pubsub.NewGossipSub(context.Background(), h)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	t, _ := ps.Join("baseline")
	t.Subscribe()
	fmt.Println("Agora daemon ready (baseline host)")
	select {}
}

type proc struct {
	name  string
	cmd   *exec.Cmd
	ready time.Duration
}

// startMeasured starts cmd and waits for its ready line.
func startMeasured(b *testing.B, name string, cmd *exec.Cmd) *proc {
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	began := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "Agora daemon ready") {
			p := &proc{name: name, cmd: cmd, ready: time.Since(began)}
			go func() {
				for sc.Scan() {
				}
			}()
			return p
		}
	}
	b.Fatalf("%s exited before ready", name)
	return nil
}

// cpuTicks is utime+stime of a process in clock ticks (100/s on Linux).
func cpuTicks(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data)[strings.LastIndexByte(string(data), ')')+2:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

func rssMiB(pid int) float64 {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func BenchmarkIdleFootprint(b *testing.B) {
	idle := 60 * time.Second
	if s := os.Getenv("AGORA_BENCH_IDLE"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatal(err)
		}
		idle = d
	}
	for i := 0; i < b.N; i++ {
		base := b.TempDir()
		self, _ := os.Executable()
		baseline := exec.Command(self, "-test.run=^$")
		baseline.Env = append(os.Environ(), baselineEnv+"=1")
		procs := []*proc{startMeasured(b, "baseline", baseline)}

		for _, variant := range []struct {
			name    string
			records int
		}{{"empty", 0}, {"10k-records", 10000}} {
			dir := filepath.Join(base, variant.name)
			_, stderr, code := run(b, "init", "--repo", dir, "--listen", "/ip4/127.0.0.1/tcp/0",
				"--listen", "/ip4/127.0.0.1/udp/0/quic-v1", "--api", "127.0.0.1:0", "--p2p-mdns=false")
			if code != 0 {
				b.Fatal(stderr)
			}
			if variant.records > 0 {
				populate(b, dir, variant.records)
			}
			p := startMeasured(b, variant.name, exec.Command(agoraBin, "daemon", "--repo", dir))
			if _, stderr, code := run(b, "community", "create", "bench", "--repo", dir); code != 0 {
				b.Fatal(stderr)
			}
			procs = append(procs, p)
		}
		// Let start-up work settle, then measure the idle window.
		time.Sleep(5 * time.Second)
		start := map[string]int64{}
		for _, p := range procs {
			start[p.name] = cpuTicks(p.cmd.Process.Pid)
		}
		time.Sleep(idle)
		for _, p := range procs {
			ticks := cpuTicks(p.cmd.Process.Pid) - start[p.name]
			cpu := float64(ticks) / 100 / idle.Seconds() * 100
			b.ReportMetric(rssMiB(p.cmd.Process.Pid), p.name+"-RSS-MiB")
			b.ReportMetric(cpu, p.name+"-CPU-%core")
			b.ReportMetric(float64(p.ready.Milliseconds()), p.name+"-ready-ms")
		}
	}
}

// populate writes n signed records into the repo's datastore before the
// daemon starts.
func populate(b *testing.B, dir string, n int) {
	b.Fatal("populate: needs the registry store")
}
