package agents

import (
	"slices"
	"strings"
	"testing"
)

func TestPrepareCommandEnv(t *testing.T) {
	node := map[string]string{"PATH": "/bin:/usr/bin", "TMPDIR": "/tmp/x", "SECRET": "s", "PASS": "p"}
	env := Env{Dir: "/srv/agents", Getenv: func(k string) string { return node[k] }}
	c, err := PrepareCommand("mcp", []string{"sh", "-c", "true"}, "work", []string{"A=1", "PASS", "EMPTY=", "PATH=/opt/bin:/bin:/usr/bin"}, env)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"PATH=/opt/bin:/bin:/usr/bin", "TMPDIR=/tmp/x", "A=1", "PASS=p", "EMPTY="}
	if !slices.Equal(c.Env, want) {
		t.Errorf("Env = %q, want %q (SECRET must not pass)", c.Env, want)
	}
	if c.Dir != "/srv/agents/work" || !strings.HasSuffix(c.Path, "/sh") || !slices.Equal(c.Args, []string{"-c", "true"}) {
		t.Errorf("command %+v", c)
	}
	for _, bad := range []string{"", "=x", "A B=1", "AGORA_SKILL=x"} {
		if _, err := PrepareCommand("exec", []string{"sh"}, "", []string{bad}, env, "AGORA_SKILL"); err == nil || !strings.HasPrefix(err.Error(), "exec.env[0]") {
			t.Errorf("env entry %q: %v", bad, err)
		}
	}
	for _, argv := range [][]string{nil, {""}, {"no-such-program-here"}, {"./missing"}} {
		if _, err := PrepareCommand("exec", argv, "", nil, env); err == nil || !strings.HasPrefix(err.Error(), "exec.command") {
			t.Errorf("argv %q: %v", argv, err)
		}
	}
}
