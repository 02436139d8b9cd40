package agents

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// passEnv are the only variables of the node's environment a command gets
// without asking.
var passEnv = []string{"PATH", "HOME", "LANG", "TMPDIR"}

// Command is a program an agent runs (exec, or an MCP server over stdio),
// resolved and with its environment built.
type Command struct {
	Path string   // absolute path of the program
	Args []string // argv[1:]
	Dir  string   // working directory
	Env  []string // the scrubbed environment
}

// PrepareCommand resolves argv[0] (a path, relative to the agents
// directory, or a name looked up in PATH), the working directory (relative
// to the agents directory; default the agents directory) and the
// environment: PATH, HOME, LANG and TMPDIR from the node, then each entry
// of entries, NAME=VALUE to set or NAME to pass the node's value through.
// Nothing else of the node's environment reaches the program. section
// names the agent file's section in errors ("exec", "mcp"); reserved names
// may not be set by entries.
func PrepareCommand(section string, argv []string, dir string, entries []string, env Env, reserved ...string) (Command, error) {
	if len(argv) == 0 || argv[0] == "" {
		return Command{}, fmt.Errorf("%s.command: the command is empty (argv, no shell)", section)
	}
	getenv := env.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	path := argv[0]
	if strings.ContainsRune(path, '/') {
		if !filepath.IsAbs(path) {
			path = filepath.Join(env.Dir, path)
		}
		if st, err := os.Stat(path); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return Command{}, fmt.Errorf("%s.command: %s is not an executable file", section, path)
		}
	} else {
		p, err := exec.LookPath(path)
		if err != nil {
			return Command{}, fmt.Errorf("%s.command: %q is not in PATH", section, path)
		}
		path = p
	}
	switch {
	case dir == "":
		dir = env.Dir
	case !filepath.IsAbs(dir):
		dir = filepath.Join(env.Dir, dir)
	}
	vars := map[string]string{}
	var order []string
	set := func(name, value string) {
		if _, ok := vars[name]; !ok {
			order = append(order, name)
		}
		vars[name] = value
	}
	for _, name := range passEnv {
		if v := getenv(name); v != "" {
			set(name, v)
		}
	}
	for i, e := range entries {
		name, val, hasVal := strings.Cut(e, "=")
		if name == "" || strings.ContainsAny(name, " \t\n\x00") || strings.ContainsRune(val, 0) {
			return Command{}, fmt.Errorf("%s.env[%d]: %q is neither NAME=VALUE nor NAME", section, i, e)
		}
		for _, r := range reserved {
			if name == r {
				return Command{}, fmt.Errorf("%s.env[%d]: %s is set by agora", section, i, r)
			}
		}
		if !hasVal {
			val = getenv(name)
		}
		set(name, val)
	}
	out := make([]string, 0, len(order))
	for _, name := range order {
		out = append(out, name+"="+vars[name])
	}
	return Command{Path: path, Args: argv[1:], Dir: dir, Env: out}, nil
}

var errNoCommand = errors.New("exec.command: an exec agent needs a command (argv, no shell)")
