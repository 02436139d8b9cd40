package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/client"
	"github.com/agora-p2p/agora/node/repo"
)

// These tests run the real agora binary: daemons in their own processes with
// their own repos, talking over loopback.

var agoraBin string

func TestMain(m *testing.M) {
	if os.Getenv(baselineEnv) == "1" {
		runBaselineHost()
	}
	dir, err := os.MkdirTemp("", "agora-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	agoraBin = filepath.Join(dir, "agora")
	build := exec.Command("go", "build", "-o", agoraBin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building agora:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run executes the agora CLI and returns stdout, stderr and the exit code.
func run(t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, agoraBin, args...)
	cmd.Env = append(os.Environ(), "AGORA_REPO=/nonexistent-agora-repo")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("agora %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// runJSON runs a command that must succeed and decodes its --json output.
func runJSON(t *testing.T, out any, args ...string) {
	t.Helper()
	stdout, stderr, code := run(t, append(args, "--json")...)
	if code != 0 {
		t.Fatalf("agora %v exited %d: %s", args, code, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), out); err != nil {
		t.Fatalf("agora %v: bad JSON %q: %v", args, stdout, err)
	}
}

func initRepo(t *testing.T, dir string) {
	t.Helper()
	_, stderr, code := run(t, "init", "--repo", dir,
		"--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip4/127.0.0.1/udp/0/quic-v1",
		"--api", "127.0.0.1:0", "--p2p-mdns=false", "--p2p-nat-port-map=false", "--p2p-dht=server")
	if code != 0 {
		t.Fatalf("init %s: %s", dir, stderr)
	}
}

type daemon struct {
	dir    string
	cmd    *exec.Cmd
	out    *bytes.Buffer
	mu     *sync.Mutex
	done   chan error
	client *client.Client
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// startDaemon starts `agora daemon` and waits for its ready line.
func startDaemon(t *testing.T, dir string) *daemon {
	t.Helper()
	d := &daemon{dir: dir, out: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan error, 1)}
	d.cmd = exec.Command(agoraBin, "daemon", "--repo", dir)
	d.cmd.Env = append(os.Environ(), "AGORA_LOG_LEVEL="+os.Getenv("AGORA_TEST_LOG_LEVEL"))
	d.cmd.Stderr = lockedWriter{d.mu, d.out}
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			lockedWriter{d.mu, d.out}.Write([]byte(sc.Text() + "\n"))
			if !signalled && strings.HasPrefix(sc.Text(), "Agora daemon ready") {
				close(ready)
				signalled = true
			}
		}
		d.done <- d.cmd.Wait()
	}()
	select {
	case <-ready:
	case err := <-d.done:
		t.Fatalf("daemon %s exited before ready (%v):\n%s", dir, err, d.output())
	case <-time.After(60 * time.Second):
		d.cmd.Process.Kill()
		t.Fatalf("daemon %s not ready after 60s:\n%s", dir, d.output())
	}
	c, err := client.FromRepo(dir)
	if err != nil {
		t.Fatal(err)
	}
	d.client = c
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Kill()
			<-d.done
		}
	})
	return d
}

func (d *daemon) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.String()
}

// stop sends SIGTERM and requires a clean exit.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("daemon %s exited with %v:\n%s", d.dir, err, d.output())
		}
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		t.Fatalf("daemon %s did not stop on SIGTERM:\n%s", d.dir, d.output())
	}
	if _, err := os.Stat(filepath.Join(d.dir, repo.APIFile)); !os.IsNotExist(err) {
		t.Fatalf("api file left after a clean exit")
	}
}

// waitFor re-checks cond each time the daemon reports an event (a peer
// connects, a member joins), so the test waits on events, not on sleeps.
func (d *daemon) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	d.waitWithin(t, 60*time.Second, what, cond)
}

// waitWithin is waitFor with another deadline.
func (d *daemon) waitWithin(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	evs := make(chan struct{}, 64)
	go d.client.Events(ctx, 0, func(api.Event) error {
		select {
		case evs <- struct{}{}:
		default:
		}
		return nil
	})
	// The periodic fallback catches state that changes without an event
	// (latency measurements); it is never needed for correctness.
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for !cond() {
		select {
		case <-evs:
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%s: timed out waiting for %s:\n%s", d.dir, what, d.output())
		}
	}
}

func TestCommunityOfThreeProcesses(t *testing.T) {
	base := t.TempDir()
	dirs := map[string]string{}
	for _, n := range []string{"a", "b", "c"} {
		dirs[n] = filepath.Join(base, n)
		initRepo(t, dirs[n])
	}
	ds := map[string]*daemon{}
	for _, n := range []string{"a", "b", "c"} {
		ds[n] = startDaemon(t, dirs[n])
	}
	ids := map[string]string{}
	for n, d := range ds {
		var id api.Identity
		runJSON(t, &id, "id", "--repo", d.dir)
		if id.PeerID == "" || len(id.Addrs) == 0 {
			t.Fatalf("%s: id = %+v", n, id)
		}
		ids[n] = id.PeerID
	}

	var created api.CreatedCommunity
	runJSON(t, &created, "community", "create", "garden", "--description", "allotment agents", "--repo", dirs["a"])
	if created.ID == "" || !strings.HasPrefix(created.Invite, "agora-invite:") || created.Name != "garden" {
		t.Fatalf("create = %+v", created)
	}
	for _, n := range []string{"b", "c"} {
		var j api.Joined
		runJSON(t, &j, "community", "join", created.Invite, "--repo", dirs[n])
		if j.ID != created.ID || j.Name != "garden" {
			t.Fatalf("%s join = %+v", n, j)
		}
	}

	everyoneSeesEveryone := func(n string) func() bool {
		return func() bool {
			var st api.Status
			runJSON(t, &st, "status", "--repo", dirs[n])
			if len(st.Communities) != 1 || st.Communities[0].Members != 3 {
				return false
			}
			var ps []api.Peer
			runJSON(t, &ps, "peers", "--repo", dirs[n])
			seen := 0
			for _, p := range ps {
				for o, id := range ids {
					if o != n && p.PeerID == id && p.Path == "direct" && len(p.Addrs) > 0 {
						seen++
					}
				}
			}
			return seen == 2
		}
	}
	for _, n := range []string{"a", "b", "c"} {
		ds[n].waitFor(t, "two peers and three members", everyoneSeesEveryone(n))
		var cs []api.Community
		runJSON(t, &cs, "community", "list", "--repo", dirs[n])
		if len(cs) != 1 || cs[0].ID != created.ID || cs[0].Name != "garden" {
			t.Fatalf("%s community list = %+v", n, cs)
		}
		var det api.CommunityDetail
		runJSON(t, &det, "community", "show", created.ID, "--repo", dirs[n])
		if len(det.Members) != 3 || len(det.Founders) != 1 || det.Founders[0] != ids["a"] {
			t.Fatalf("%s community show = %+v", n, det)
		}
	}

	// Restart B without the invite: it redials the peers it remembers.
	// (Not a subtest: the new daemon must outlive the subtest's cleanup.)
	ds["b"].stop(t)
	ds["b"] = startDaemon(t, dirs["b"])
	ds["b"].waitFor(t, "reconnection after restart", everyoneSeesEveryone("b"))

	t.Run("second daemon on a locked repo refuses", func(t *testing.T) {
		_, stderr, code := run(t, "daemon", "--repo", dirs["a"])
		if code == 0 || !strings.Contains(stderr, "already running") {
			t.Fatalf("second daemon: exit %d, stderr %q", code, stderr)
		}
	})

	t.Run("api guards", func(t *testing.T) {
		addr, _ := os.ReadFile(filepath.Join(dirs["a"], repo.APIFile))
		base := "http://" + strings.TrimSpace(string(addr))
		tok, _ := os.ReadFile(filepath.Join(dirs["a"], repo.TokenFile))
		get := func(path, token, host string) int {
			req, _ := http.NewRequest("GET", base+path, nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			if host != "" {
				req.Host = host
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode
		}
		good := strings.TrimSpace(string(tok))
		for _, tc := range []struct {
			path, token, host string
			want              int
		}{
			{"/healthz", "", "", 200},
			{"/api/v1/status", "", "", 401},
			{"/api/v1/status", "wrong", "", 401},
			{"/api/v1/status", good, "", 200},
			{"/api/v1/status", good, "evil.example:4243", 403},
			{"/metrics", "", "", 401},
			{"/metrics", good, "", 200},
		} {
			if got := get(tc.path, tc.token, tc.host); got != tc.want {
				t.Errorf("GET %s (token %q, host %q) = %d, want %d", tc.path, tc.token, tc.host, got, tc.want)
			}
		}
	})

	t.Run("bad invites change nothing", func(t *testing.T) {
		tampered := []byte(created.Invite)
		tampered[len(tampered)/2] ^= 0x01
		for _, bad := range []string{"hello", "agora-invite:!!!", string(tampered), created.Invite[:len(created.Invite)/2]} {
			_, stderr, code := run(t, "community", "join", bad, "--repo", dirs["b"])
			if code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("join %q: exit %d, stderr %q (want one sentence and a failure)", bad, code, stderr)
			}
		}
		var cs []api.Community
		runJSON(t, &cs, "community", "list", "--repo", dirs["b"])
		if len(cs) != 1 {
			t.Fatalf("bad invites changed the communities: %+v", cs)
		}
	})

	t.Run("bad config values change nothing", func(t *testing.T) {
		cfgPath := filepath.Join(dirs["c"], "config.toml")
		before, _ := os.ReadFile(cfgPath)
		for _, kv := range [][2]string{{"p2p.listen", "bogus"}, {"nope", "1"}, {"api.listen", "nowhere"}, {"profile", "turbo"}} {
			_, stderr, code := run(t, "config", "set", kv[0], kv[1], "--repo", dirs["c"])
			if code == 0 || stderr == "" {
				t.Errorf("config set %s %s: exit %d, stderr %q", kv[0], kv[1], code, stderr)
			}
		}
		after, _ := os.ReadFile(cfgPath)
		if !bytes.Equal(before, after) {
			t.Fatal("a rejected config value changed config.toml")
		}
		out, _, code := run(t, "config", "get", "p2p.dht", "--repo", dirs["c"])
		if code != 0 || strings.TrimSpace(out) != "server" {
			t.Fatalf("config get p2p.dht = %q (exit %d)", out, code)
		}
	})

	for _, n := range []string{"a", "b", "c"} {
		ds[n].stop(t)
	}
}

func TestCLIWithoutDaemonAndRepoErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "n")
	_, stderr, code := run(t, "status", "--repo", dir)
	if code == 0 || !strings.Contains(stderr, "not running") || !strings.Contains(stderr, "agora daemon") {
		t.Fatalf("status without daemon: exit %d, %q", code, stderr)
	}
	initRepo(t, dir)
	key, _ := os.ReadFile(filepath.Join(dir, repo.KeyFile))
	_, stderr, code = run(t, "init", "--repo", dir)
	if code == 0 || !strings.Contains(stderr, "already initialised") {
		t.Fatalf("second init: exit %d, %q", code, stderr)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, repo.KeyFile)); !bytes.Equal(key, again) {
		t.Fatal("second init changed the key")
	}
	_, stderr, code = run(t, "init", "--repo", filepath.Join(t.TempDir(), "x"), "--profile", "turbo")
	if code == 0 || !strings.Contains(stderr, "profile") {
		t.Fatalf("init with a bad profile: exit %d, %q", code, stderr)
	}
	_, stderr, code = run(t, "daemon", "--repo", filepath.Join(t.TempDir(), "none"))
	if code == 0 || !strings.Contains(stderr, "agora init") {
		t.Fatalf("daemon on an empty dir: exit %d, %q", code, stderr)
	}
}

func TestDemo(t *testing.T) {
	out, stderr, code := run(t, "demo")
	if code != 0 {
		t.Fatalf("demo exited %d:\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"creates the community", "join", "sees 2 peers", "has 3 members", "holds all 26 records",
		"every node holds the 4 feedback records", "1. alice", "2. bob", "3. carol", "every node now certifies carol's node",
		"certified=true", "certified=false", "alice votes yes", "tally: passed, yes 2000 no 1000",
		"alice's one attestation certifies carol again"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
