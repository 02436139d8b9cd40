package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/agora-p2p/agora/node/config"
	"github.com/agora-p2p/agora/node/repo"
	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/agora-p2p/agora/registry"
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

// rssMiB is the process's resident memory (VmRSS): its anonymous memory
// (RssAnon: heap, stacks) plus the pages of mapped files it has touched
// (the executable's above all).
func rssMiB(pid int) float64 { return statusMiB(pid, "VmRSS:") }

func statusMiB(pid int, field string) float64 {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, field) {
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
			p := startMeasured(b, variant.name, exec.Command(agoraBin, "daemon", "--repo", dir))
			out, stderr, code := run(b, "community", "create", "bench", "--repo", dir, "--json")
			if code != 0 {
				b.Fatal(stderr)
			}
			if variant.records > 0 {
				// Stop, fill the datastore, start again: the measured
				// daemon opens a datastore that holds the records.
				var created struct{ ID string }
				json.Unmarshal([]byte(out), &created)
				c, err := cid.Decode(created.ID)
				if err != nil {
					b.Fatal(err)
				}
				p.cmd.Process.Signal(syscall.SIGTERM)
				p.cmd.Wait()
				populate(b, dir, c, variant.records)
				p = startMeasured(b, variant.name, exec.Command(agoraBin, "daemon", "--repo", dir))
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
			b.ReportMetric(statusMiB(p.cmd.Process.Pid, "RssAnon:"), p.name+"-anon-MiB")
			b.ReportMetric(cpu, p.name+"-CPU-%core")
			b.ReportMetric(float64(p.ready.Milliseconds()), p.name+"-ready-ms")
		}
	}
}

// populate writes n signed attestations of community c, by 100 authors,
// into the repo's datastore while the daemon is stopped, the way sync would
// have stored them.
func populate(b *testing.B, dir string, c cid.Cid, n int) {
	ds, err := repo.OpenDatastore(filepath.Join(dir, repo.DatastoreDir), config.ProfileDefault)
	if err != nil {
		b.Fatal(err)
	}
	defer ds.Close()
	st, err := registry.Open(ds.DB, registry.Options{Member: func(cid.Cid) bool { return true }})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	keys := make([]crypto.PrivKey, 100)
	for i := range keys {
		keys[i], _, _ = crypto.GenerateEd25519Key(rand.Reader)
	}
	created := time.Now().Add(-time.Hour)
	var batch [][]byte
	for i := 0; i < n; i++ {
		att := body.Attestation{
			Subject:   body.Subject{Type: body.SubjectSkill, ID: fmt.Sprintf("text.stats-%d", i)},
			Predicate: "agora:audit/deterministic/v1", Verdict: body.VerdictPass,
			Claims: map[string]string{"samples": "20"},
		}
		rec, err := record.Sign(keys[i%len(keys)], record.KindAttestation, c, att, created.Add(time.Duration(i)*time.Millisecond))
		if err != nil {
			b.Fatal(err)
		}
		raw, _ := rec.Encode()
		batch = append(batch, raw)
		if len(batch) == 500 || i == n-1 {
			for _, r := range st.IngestBatch(context.Background(), batch) {
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
			batch = batch[:0]
		}
	}
	if got := st.Count(c); got != n {
		b.Fatalf("populated %d records, want %d", got, n)
	}
}
