package mcpagent

import (
	"fmt"
	"os"
	"strings"
)

// baseEnv is what a stdio server gets of the node's environment without
// asking: as for the exec backend.
var baseEnv = []string{"PATH", "HOME", "LANG", "TMPDIR"}

// commandEnv builds a server's environment from the node's (getenv) and the
// spec's entries: NAME=VALUE sets, NAME alone passes the node's value
// through. Nothing else reaches the server.
func commandEnv(entries []string, getenv func(string) string) ([]string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	vars := map[string]string{}
	var order []string
	set := func(name, value string) {
		if _, ok := vars[name]; !ok {
			order = append(order, name)
		}
		vars[name] = value
	}
	for _, name := range baseEnv {
		if v := getenv(name); v != "" {
			set(name, v)
		}
	}
	for i, e := range entries {
		name, value, hasValue := strings.Cut(e, "=")
		if name == "" || strings.ContainsAny(name, " \t\n\x00") || strings.ContainsRune(value, 0) {
			return nil, fmt.Errorf("mcp.env[%d]: %q is neither NAME=VALUE nor NAME", i, e)
		}
		if !hasValue {
			value = getenv(name)
		}
		set(name, value)
	}
	out := make([]string, 0, len(order))
	for _, name := range order {
		out = append(out, name+"="+vars[name])
	}
	return out, nil
}
