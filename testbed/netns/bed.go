//go:build linux

package netns

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/agora-p2p/agora/node/client"
	"github.com/agora-p2p/agora/node/config"
	"github.com/agora-p2p/agora/node/repo"
)

// Bed is one scenario's network: hosts in their own namespaces, each with
// a management link to the test (a bridge the test's own namespace is on,
// with no delay, for the local API) and a data link through the Fabric
// (for everything between hosts: libp2p over TCP and QUIC).
type Bed struct {
	t      testing.TB
	bin    string
	tag    string
	dir    string
	bridge string
	mgmt   string // the management network's first three octets, "10.x.y"
	Fabric *Fabric
	Hosts  []*Host
}

// Host is one machine of the bed: a namespace, a repo, and the agora
// daemon when it runs.
type Host struct {
	bed    *Bed
	Idx    int    // 0-based
	Name   string // h0, h1, ...
	NS     string
	IP     string // on the data network
	Mgmt   string // on the management network
	Repo   string
	PeerID string
	Client *client.Client

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan error
	log  *os.File
}

var bedSeq atomic.Int32

// Data network addresses are the same in every bed: each namespace has its
// own routing table, so beds never see each other's.
func dataIP(i int) [4]byte { return [4]byte{10, 77, 0, byte(i + 1)} }

// NewBed makes n hosts whose data links are link, with repos initialised
// (daemons not started). bin is the agora binary.
func NewBed(t testing.TB, bin string, n int, link Link) *Bed {
	t.Helper()
	seq := int(bedSeq.Add(1))
	pid := os.Getpid()
	b := &Bed{t: t, bin: bin, tag: fmt.Sprintf("%xs%d", pid, seq), dir: t.TempDir(),
		mgmt:   fmt.Sprintf("10.%d.%d", 100+seq%100, pid%250+1),
		Fabric: NewFabric(link, uint64(seq)*7919)}
	b.bridge = "b" + b.tag
	t.Cleanup(b.close)
	b.must("ip", "link", "add", b.bridge, "type", "bridge")
	b.must("ip", "addr", "add", b.mgmt+".254/24", "dev", b.bridge)
	b.must("ip", "link", "set", b.bridge, "up")
	for i := range n {
		h := &Host{bed: b, Idx: i, Name: fmt.Sprintf("h%d", i), NS: fmt.Sprintf("agora-%d-%d-%d", pid, seq, i),
			Mgmt: fmt.Sprintf("%s.%d", b.mgmt, i+1), Repo: filepath.Join(b.dir, fmt.Sprintf("h%d", i))}
		ip := dataIP(i)
		h.IP = fmt.Sprintf("%d.%d.%d.%d", ip[0], ip[1], ip[2], ip[3])
		b.Hosts = append(b.Hosts, h)
		veth := fmt.Sprintf("v%sh%d", b.tag, i)
		b.must("ip", "netns", "add", h.NS)
		b.must("ip", "link", "add", veth, "type", "veth", "peer", "name", "mgmt0", "netns", h.NS)
		b.must("ip", "link", "set", veth, "master", b.bridge, "up")
		b.must("ip", "-n", h.NS, "addr", "add", h.Mgmt+"/24", "dev", "mgmt0")
		b.must("ip", "-n", h.NS, "link", "set", "mgmt0", "up")
		b.must("ip", "-n", h.NS, "link", "set", "lo", "up")
		if err := b.Fabric.Attach(i, h.NS, "tun0", ip); err != nil {
			t.Fatal(err)
		}
		b.must("ip", "-n", h.NS, "addr", "add", h.IP+"/24", "dev", "tun0")
		b.must("ip", "-n", h.NS, "link", "set", "tun0", "up")
		h.init()
	}
	return b
}

func (b *Bed) must(args ...string) {
	b.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		b.t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func (h *Host) init() {
	t := h.bed.t
	t.Helper()
	c := config.Default()
	for k, v := range map[string]string{
		"p2p.listen":       fmt.Sprintf("/ip4/%s/tcp/4001,/ip4/%s/udp/4001/quic-v1", h.IP, h.IP),
		"api.listen":       h.Mgmt + ":5001",
		"p2p.mdns":         "false",
		"p2p.nat_port_map": "false",
		"p2p.relay_client": "false",
		"p2p.dht":          "server",
	} {
		if err := c.Set(k, v); err != nil {
			t.Fatalf("config %s: %v", k, err)
		}
	}
	key, err := repo.Init(h.Repo, c)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peerIDOf(key)
	if err != nil {
		t.Fatal(err)
	}
	h.PeerID = id
}

// Start runs the host's daemon in its namespace and waits for its ready
// line.
func (h *Host) Start() {
	h.bed.t.Helper()
	if err := h.start(); err != nil {
		h.bed.t.Fatal(err)
	}
}

func (h *Host) start() error {
	log, err := os.OpenFile(filepath.Join(h.bed.dir, h.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "==== start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command("ip", "netns", "exec", h.NS, h.bed.bin, "daemon", "--repo", h.Repo)
	cmd.Env = append(os.Environ(), "AGORA_LOG_LEVEL="+envOr("AGORA_TESTBED_LOG_LEVEL", "info"))
	cmd.Stderr = log
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			fmt.Fprintln(log, sc.Text())
			if !signalled && strings.HasPrefix(sc.Text(), "Agora daemon ready") {
				close(ready)
				signalled = true
			}
		}
		io.Copy(io.Discard, out)
		done <- cmd.Wait()
	}()
	h.mu.Lock()
	h.cmd, h.done, h.log = cmd, done, log
	h.mu.Unlock()
	select {
	case <-ready:
	case err := <-done:
		h.mu.Lock()
		h.cmd = nil
		h.mu.Unlock()
		return fmt.Errorf("%s exited before it was ready (%v):\n%s", h.Name, err, h.Tail(40))
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		return fmt.Errorf("%s not ready after 60 s:\n%s", h.Name, h.Tail(40))
	}
	c, err := client.FromRepo(h.Repo)
	if err != nil {
		return err
	}
	h.Client = c
	return nil
}

// Kill9 kills the daemon with SIGKILL, as a power cut would.
func (h *Host) Kill9() { h.signal(syscall.SIGKILL, false) }

// Stop stops the daemon with SIGTERM and requires a clean exit.
func (h *Host) Stop() { h.signal(syscall.SIGTERM, true) }

func (h *Host) signal(sig syscall.Signal, clean bool) {
	t := h.bed.t
	t.Helper()
	h.mu.Lock()
	cmd, done := h.cmd, h.done
	h.cmd = nil
	h.mu.Unlock()
	if cmd == nil {
		t.Fatalf("%s is not running", h.Name)
	}
	cmd.Process.Signal(sig)
	select {
	case err := <-done:
		if clean && err != nil {
			t.Fatalf("%s exited with %v on %v:\n%s", h.Name, err, sig, h.Tail(40))
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%s did not exit on %v", h.Name, sig)
	}
	fmt.Fprintf(h.log, "==== %v %s\n", sig, time.Now().Format(time.RFC3339Nano))
	h.log.Close()
}

// Running reports whether the daemon runs.
func (h *Host) Running() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cmd != nil
}

// Tail returns the last n lines of the host's log.
func (h *Host) Tail(n int) string {
	b, _ := os.ReadFile(filepath.Join(h.bed.dir, h.Name+".log"))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// StartAll starts every host's daemon, in parallel.
func (b *Bed) StartAll() {
	b.t.Helper()
	errs := make([]error, len(b.Hosts))
	var wg sync.WaitGroup
	for i, h := range b.Hosts {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = h.start() }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.t.Fatal(err)
		}
	}
}

func (b *Bed) close() {
	for _, h := range b.Hosts {
		h.mu.Lock()
		cmd, done := h.cmd, h.done
		h.cmd = nil
		h.mu.Unlock()
		if cmd != nil {
			cmd.Process.Kill()
			<-done
			h.log.Close()
		}
		if b.t.Failed() {
			b.t.Logf("---- %s (%s, %s) log tail:\n%s", h.Name, h.IP, h.PeerID, h.Tail(60))
		}
		if keep := os.Getenv("AGORA_TESTBED_KEEP_LOGS"); keep != "" {
			if log, err := os.ReadFile(filepath.Join(b.dir, h.Name+".log")); err == nil {
				os.MkdirAll(keep, 0o755)
				os.WriteFile(filepath.Join(keep, b.t.Name()+"-"+h.Name+".log"), log, 0o644)
			}
		}
	}
	b.Fabric.Close()
	for _, h := range b.Hosts {
		exec.Command("ip", "netns", "del", h.NS).Run()
	}
	exec.Command("ip", "link", "del", b.bridge).Run()
}

// Eventually polls cond until it holds or limit passes; detail says what
// was last seen, for the failure message. It returns how long it took.
func Eventually(t testing.TB, limit time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(limit)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, detail := cond()
		if ok {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last seen: %s", what, limit, detail)
		}
		<-tick.C
	}
}

// ctx is a context for one API call.
func ctx(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func envOr(k, dflt string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return dflt
}

var staleNS = regexp.MustCompile(`^agora-(\d+)-\d+-\d+`)
var staleBridge = regexp.MustCompile(`^b([0-9a-f]+)s\d+$`)

// CleanStale removes namespaces and bridges that a killed test run left
// behind (their process is gone).
func CleanStale() {
	alive := func(pid int64) bool {
		_, err := os.Stat("/proc/" + strconv.FormatInt(pid, 10))
		return err == nil
	}
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if m := staleNS.FindStringSubmatch(line); m != nil {
				if pid, _ := strconv.ParseInt(m[1], 10, 64); !alive(pid) {
					exec.Command("ip", "netns", "del", strings.Fields(line)[0]).Run()
				}
			}
		}
	}
	if out, err := exec.Command("ip", "-o", "link", "show", "type", "bridge").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name := strings.TrimSuffix(f[1], ":")
			if m := staleBridge.FindStringSubmatch(name); m != nil {
				if pid, _ := strconv.ParseInt(m[1], 16, 64); !alive(pid) {
					exec.Command("ip", "link", "del", name).Run()
				}
			}
		}
	}
}

// Metric reads one sample from a Prometheus text exposition: name with
// labels as written (e.g. `agora_records_rejected_total{reason="bad-signature"}`),
// or the sum of all of a name's samples when labels is "*".
func Metric(text, name, labels string) float64 {
	var sum float64
	for _, line := range bytes.Split([]byte(text), []byte("\n")) {
		l := string(line)
		if !strings.HasPrefix(l, name) || strings.HasPrefix(l, "#") {
			continue
		}
		rest := l[len(name):]
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		var series string
		var value string
		if strings.HasPrefix(rest, "{") {
			end := strings.Index(rest, "}")
			if end < 0 {
				continue
			}
			series, value = rest[:end+1], strings.TrimSpace(rest[end+1:])
		} else if strings.HasPrefix(rest, " ") {
			value = strings.TrimSpace(rest)
		} else {
			continue // a longer name
		}
		if labels != "*" && series != labels {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

func peerIDOf(key crypto.PrivKey) (string, error) {
	id, err := peer.IDFromPrivateKey(key)
	return id.String(), err
}
