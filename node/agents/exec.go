package agents

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Exec backend tuning.
const (
	// execStderrTail is how much of a command's stderr a failure reports.
	execStderrTail = 4 << 10
	// execWaitDelay bounds Wait after the process group was killed, for a
	// process that does not die (uninterruptible sleep).
	execWaitDelay = 2 * time.Second
	// execDrainGrace bounds reading a command's pipes after it exited and
	// its group was killed: only a process that escaped the group (setsid)
	// can still hold them open.
	execDrainGrace = 500 * time.Millisecond
)

var errOutputFlood = errors.New("output flood")

// ExecFactory builds the "exec" backend: [exec] command runs without a
// shell once per task, the skill's args appended, input JSON on stdin, one
// JSON value expected on stdout. Lines on stderr of the form
// `progress: <percent> <message>` are reported as progress.
var ExecFactory Factory = func(ctx context.Context, spec *Spec, env Env) (Backend, error) {
	es := spec.Exec
	if es == nil || len(es.Command) == 0 || es.Command[0] == "" {
		return nil, errNoCommand
	}
	cmd, err := PrepareCommand("exec", es.Command, es.Dir, es.Env, env, "AGORA_SKILL")
	if err != nil {
		return nil, err
	}
	skills, err := SkillsFromSpec(spec)
	if err != nil {
		return nil, err
	}
	if len(skills) == 0 {
		return nil, errors.New("skills: an exec agent needs at least one [[skills]]")
	}
	b := &execBackend{
		path: cmd.Path, argv: cmd.Args, dir: cmd.Dir, env: cmd.Env,
		skills: skills, args: map[string][]string{},
		maxOutput: spec.Limits.MaxOutput,
	}
	if b.maxOutput <= 0 {
		b.maxOutput = DefaultMaxOutput
	}
	for _, ss := range spec.Skills {
		b.args[ss.ID] = ss.Args
	}
	return b, nil
}

type execBackend struct {
	path      string
	argv      []string
	dir       string
	env       []string
	skills    []Skill
	args      map[string][]string
	maxOutput int
}

func (b *execBackend) Skills() []Skill { return append([]Skill(nil), b.skills...) }

func (b *execBackend) Close() error { return nil }

func (b *execBackend) Run(ctx context.Context, skill string, input json.RawMessage, progress Progress) (json.RawMessage, error) {
	args, ok := b.args[skill]
	if !ok {
		return nil, Errorf(CodeUnknownSkill, "this agent has no skill %q", skill)
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	// The child gets *os.File pipes, so Wait returns when it exits even if
	// something it started still holds them; we read them ourselves.
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW)
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW, outR, outW)
		return nil, err
	}
	defer closeAll(inW, outR, errR)

	cmd := exec.CommandContext(runCtx, b.path, append(append([]string(nil), b.argv...), args...)...)
	cmd.Dir = b.dir
	cmd.Env = append(append([]string(nil), b.env...), "AGORA_SKILL="+skill)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	cmd.WaitDelay = execWaitDelay
	err = cmd.Start()
	closeAll(inR, outW, errW)
	if err != nil {
		return nil, Errorf(CodeBackend, "cannot start %s: %v", b.path, err)
	}
	pgid := cmd.Process.Pid

	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		// A command that does not read its input gets EPIPE; not an error.
		_, _ = inW.Write(input)
		inW.Close()
	}()
	stdout := &cappedBuffer{max: b.maxOutput, full: func() { cancel(errOutputFlood) }}
	go func() {
		defer wg.Done()
		_, _ = io.Copy(stdout, outR)
	}()
	stderr := &stderrTail{progress: progress}
	go func() {
		defer wg.Done()
		stderr.read(errR)
	}()

	waitErr := cmd.Wait()
	// Whatever the command left behind in its group goes with it.
	_ = killGroup(pgid)
	deadline := time.Now().Add(execDrainGrace)
	_ = outR.SetReadDeadline(deadline)
	_ = errR.SetReadDeadline(deadline)
	_ = inW.SetWriteDeadline(deadline)
	wg.Wait()

	switch {
	case context.Cause(runCtx) == errOutputFlood:
		return nil, Errorf(CodeOutputTooBig, "the command wrote more than %d bytes on stdout and was stopped", b.maxOutput)
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case waitErr != nil:
		var ee *exec.ExitError
		if errors.As(waitErr, &ee) {
			return nil, Errorf(CodeBackend, "%s%s", exitText(ee), stderr.text())
		}
		return nil, Errorf(CodeBackend, "the command failed: %v%s", waitErr, stderr.text())
	}
	out := bytes.TrimSpace(stdout.buf.Bytes())
	if len(out) == 0 {
		return nil, Errorf(CodeBackend, "the command wrote nothing on stdout%s", stderr.text())
	}
	if !json.Valid(out) {
		head := out[:min(len(out), 64)]
		return nil, Errorf(CodeBackend, "the command's output is not one JSON value; it starts with %q", head)
	}
	return out, nil
}

func exitText(ee *exec.ExitError) string {
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "the command was killed by signal " + ws.Signal().String()
	}
	return "the command exited with status " + strconv.Itoa(ee.ExitCode())
}

// killGroup kills the process group led by pid.
func killGroup(pid int) error {
	err := syscall.Kill(-pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// cappedBuffer keeps up to max bytes; one more calls full and fails the
// write, which stops the copy.
type cappedBuffer struct {
	buf  bytes.Buffer
	max  int
	full func()
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if c.buf.Len()+len(p) > c.max {
		c.full()
		return 0, errOutputFlood
	}
	return c.buf.Write(p)
}

// stderrTail keeps the last execStderrTail bytes of stderr lines and turns
// progress lines into Progress calls.
type stderrTail struct {
	progress Progress
	tail     []byte
}

func (s *stderrTail) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), execStderrTail)
	for {
		if !sc.Scan() {
			if errors.Is(sc.Err(), bufio.ErrTooLong) {
				// A line longer than the tail: keep the scanner going on
				// the rest; only the tail matters.
				sc = bufio.NewScanner(r)
				sc.Buffer(make([]byte, 0, 4096), execStderrTail)
				continue
			}
			return
		}
		line := sc.Bytes()
		if msg, pct, ok := parseProgress(line); ok {
			if s.progress != nil {
				s.progress(msg, pct)
			}
			continue
		}
		s.tail = append(s.tail, line...)
		s.tail = append(s.tail, '\n')
		if n := len(s.tail); n > execStderrTail {
			s.tail = append(s.tail[:0], s.tail[n-execStderrTail:]...)
		}
	}
}

// text is the stderr tail for an error message, "" if empty.
func (s *stderrTail) text() string {
	t := strings.TrimSpace(strings.ToValidUTF8(string(s.tail), "\uFFFD"))
	if t == "" {
		return ""
	}
	return "; stderr: " + t
}

// parseProgress reads `progress: <percent> <message>`; percent may be a
// decimal, -1 for unknown.
func parseProgress(line []byte) (string, int, bool) {
	rest, ok := bytes.CutPrefix(line, []byte("progress:"))
	if !ok {
		return "", 0, false
	}
	rest = bytes.TrimSpace(rest)
	num, msg, _ := bytes.Cut(rest, []byte(" "))
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil || !(f >= -1 && f <= 100) {
		return "", 0, false
	}
	pct := int(f)
	if f < 0 {
		pct = -1
	}
	return strings.ToValidUTF8(strings.TrimSpace(string(msg)), "\uFFFD"), pct, true
}
