package agents

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv selects a helper mode: the test binary re-executed as the
// command of an exec agent, so the tests need no shell utilities.
const helperEnv = "AGORA_AGENTS_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode))
	}
	os.Exit(m.Run())
}

func helper(mode string) int {
	switch mode {
	case "echo": // stdin to stdout
		io.Copy(os.Stdout, os.Stdin)
	case "args": // what the command was given
		in, _ := io.ReadAll(os.Stdin)
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		json.NewEncoder(os.Stdout).Encode(map[string]any{
			"args": os.Args[1:], "env": env, "input": json.RawMessage(in),
		})
	case "fail":
		fmt.Fprintln(os.Stderr, "something went wrong")
		fmt.Fprintln(os.Stderr, "boom")
		return 3
	case "badjson":
		io.Copy(io.Discard, os.Stdin)
		fmt.Println("this is not JSON")
	case "flood":
		line := []byte(strings.Repeat("x", 4096))
		for {
			if _, err := os.Stdout.Write(line); err != nil {
				return 1
			}
		}
	case "progress":
		fmt.Fprintln(os.Stderr, "progress: 10 reading")
		fmt.Fprintln(os.Stderr, "progress: 99.5 almost")
		fmt.Fprintln(os.Stderr, "progress: soon not a progress line")
		io.Copy(os.Stdout, os.Stdin)
	case "hang": // write our pid, say we started, and never finish
		writePid()
		fmt.Fprintln(os.Stderr, "progress: 0 started")
		time.Sleep(2 * time.Minute) // bounded, should a test fail to kill it
	case "grandchild", "grandchild-exit":
		// Start a copy of ourselves that hangs holding our stdout, then
		// hang too, or exit at once with good output.
		c := exec.Command(os.Args[0])
		c.Env = append(os.Environ(), helperEnv+"=hang")
		c.Stdout = os.Stdout
		c.Stderr = nil
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		waitForPidFile()
		if mode == "grandchild-exit" {
			fmt.Println(`{"ok":true}`)
			return 0
		}
		fmt.Fprintln(os.Stderr, "progress: 0 started")
		time.Sleep(2 * time.Minute) // bounded, should a test fail to kill it
	case "escape":
		// Start a copy of ourselves in a session of its own (out of reach
		// of the group kill) holding our stdout, and exit with good output.
		c := exec.Command(os.Args[0])
		c.Env = append(os.Environ(), helperEnv+"=hang")
		c.Stdout = os.Stdout
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		waitForPidFile()
		fmt.Println(`{"ok":true}`)
	default:
		fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
		return 2
	}
	return 0
}

func writePid() {
	if f := os.Getenv("PIDFILE"); f != "" {
		os.WriteFile(f+".tmp", []byte(strconv.Itoa(os.Getpid())), 0o600)
		os.Rename(f+".tmp", f)
	}
}

// waitForPidFile waits (bounded) for the grandchild to have written its pid.
func waitForPidFile() {
	f := os.Getenv("PIDFILE")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(f); err == nil {
			return
		}
	}
}

// processGone reports whether pid is dead (or a zombie nobody reaped yet),
// polling for up to 5 s since the reaper may lag.
func processGone(t *testing.T, pid int) bool {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
			return true
		}
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			// "pid (comm) state ...": a zombie is dead, just not reaped.
			if i := strings.LastIndexByte(string(stat), ')'); i >= 0 {
				if s := strings.TrimSpace(string(stat[i+1:])); strings.HasPrefix(s, "Z") || strings.HasPrefix(s, "X") {
					return true
				}
			}
		}
	}
	return false
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	pid, err := strconv.Atoi(string(data))
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	return pid
}

func testExe(t testing.TB) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}
