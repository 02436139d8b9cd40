package agents

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseSpecGood(t *testing.T) {
	files, err := filepath.Glob("testdata/good/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no good files: %v", err)
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		spec, err := ParseSpec(path, data)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if spec.Path != path || spec.Name != strings.TrimSuffix(filepath.Base(path), ".toml") {
			t.Errorf("%s: path %q name %q", path, spec.Path, spec.Name)
		}
	}
}

func TestParseSpecFields(t *testing.T) {
	data, err := os.ReadFile("testdata/good/summarize.toml")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := ParseSpec("summarize.toml", data)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Backend != "exec" || spec.Exec == nil || len(spec.Exec.Command) != 2 {
		t.Errorf("backend %q exec %+v", spec.Backend, spec.Exec)
	}
	if spec.Limits.Timeout.Duration != 90*time.Second || spec.Limits.Concurrency != 2 {
		t.Errorf("limits %+v", spec.Limits)
	}
	// Defaults fill what the file leaves out.
	if spec.Limits.MaxInput != DefaultMaxInput || spec.Limits.MaxOutput != DefaultMaxOutput || spec.Limits.RatePerPeer != DefaultRatePerPeer {
		t.Errorf("defaults not applied: %+v", spec.Limits)
	}
	if len(spec.Skills) != 2 || spec.Skills[1].Args[0] != "--short" || len(spec.Skills[0].Examples) != 1 {
		t.Errorf("skills %+v", spec.Skills)
	}

	min, err := ParseSpec("", []byte("name = \"m\"\nbackend = \"builtin\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Limits{Concurrency: 4, Timeout: Duration{60 * time.Second}, MaxInput: 256 << 10, MaxOutput: 1 << 20, RatePerPeer: 5}
	if min.Limits != want {
		t.Errorf("defaults %+v, want %+v", min.Limits, want)
	}
}

func TestParseSpecErrors(t *testing.T) {
	const head = "name = \"x\"\nbackend = \"exec\"\n" // lines 1-2
	const cmd = "[exec]\ncommand = [\"true\"]\n"
	tests := []struct {
		name, path, data, want string
	}{
		{"syntax", "agents/x.toml", head + "description = \"unterminated\n", "agents/x.toml:3: "},
		{"unknown field", "agents/x.toml", "name = \"x\"\nversion = \"1\"\nbakend = \"exec\"\n", `agents/x.toml:3: unknown field "bakend"`},
		{"unknown nested field", "agents/x.toml", head + "[sharing]\nmod = \"private\"\n", `agents/x.toml:4: unknown field "sharing.mod"`},
		{"unknown skill field", "agents/x.toml", head + cmd + "[[skills]]\nid = \"a\"\ninput = \"{}\"\n", `agents/x.toml:7: unknown field "skills.input"`},
		{"type mismatch", "agents/x.toml", head + "[limits]\nconcurrency = \"four\"\n", "agents/x.toml:4: limits.concurrency: "},
		{"bad duration", "agents/x.toml", head + "[limits]\ntimeout = \"soon\"\n", "agents/x.toml:4: limits.timeout: "},
		{"negative duration", "agents/x.toml", head + "[limits]\ntimeout = \"-1s\"\n", "agents/x.toml:4: limits.timeout: duration must not be negative"},
		{"bad name", "", "name = \"Bad Name\"\nbackend = \"exec\"\n", `line 1: name: "Bad Name" is not a valid agent name`},
		{"no name", "", "backend = \"exec\"\n", `name: "" is not a valid agent name`},
		{"name not file name", "agents/y.toml", head, `agents/y.toml:1: name: the agent in y.toml must be named "y", not "x"`},
		{"bad backend", "x.toml", "name = \"x\"\n\nbackend = \"shell\"\n", `x.toml:3: backend: "shell" is not a backend; use one of builtin, exec, openai, mcp`},
		{"other section", "x.toml", head + "[openai]\nmodel = \"m\"\n", "x.toml:3: openai: a exec agent has no [openai] section"},
		{"bad sharing mode", "x.toml", head + "[sharing]\nmode = \"public\"\n", `x.toml:4: sharing.mode: "public" is not a sharing mode`},
		{"dotted sharing mode", "x.toml", head + "sharing.mode = \"public\"\n", `x.toml:3: sharing.mode: "public" is not a sharing mode`},
		{"negative concurrency", "x.toml", head + "[limits]\ntimeout = \"1s\"\nconcurrency = -1\n", "x.toml:5: limits.concurrency: must not be negative"},
		{"negative max_output", "x.toml", head + "[limits]\nmax_output = -5\n", "x.toml:4: limits.max_output: must not be negative"},
		{"negative rate", "x.toml", head + "[limits]\nrate_per_peer = -0.5\n", "x.toml:4: limits.rate_per_peer: must not be negative"},
		{"bad skill id", "x.toml", head + cmd + "[[skills]]\nid = \"Summarize!\"\n", `x.toml:6: skills[0].id: "Summarize!" is not a valid skill ID`},
		{"no skill id", "x.toml", head + cmd + "[[skills]]\ndescription = \"d\"\n", `x.toml:5: skills[0].id: "" is not a valid skill ID`},
		{"duplicate skill", "x.toml", head + cmd + "[[skills]]\nid = \"a\"\n[[skills]]\nid = \"b\"\n[[skills]]\nid = \"a\"\n", `x.toml:10: skills[2].id: skill "a" is declared twice`},
		{"schema not JSON", "agents/x.toml", head + cmd + "[[skills]]\nid = \"a\"\n[[skills]]\nid = \"b\"\ninput_schema = '{\"type\": }'\n", "agents/x.toml:9: skills[1].input_schema: invalid JSON: "},
		{"schema invalid", "x.toml", head + cmd + "[[skills]]\nid = \"a\"\noutput_schema = '''\n{\"type\": \"objekt\"}\n'''\n", "x.toml:7: skills[0].output_schema: invalid schema: at '/type'"},
		{"schema remote ref", "x.toml", head + cmd + "[[skills]]\nid = \"a\"\ninput_schema = '{\"$ref\": \"https://example.com/s.json\"}'\n", "x.toml:7: skills[0].input_schema: invalid schema: "},
		{"schema file ref", "x.toml", head + cmd + "[[skills]]\nid = \"a\"\ninput_schema = '{\"$ref\": \"/etc/passwd\"}'\n", "x.toml:7: skills[0].input_schema: invalid schema: "},
		{"example not JSON", "x.toml", head + cmd + "[[skills]]\nid = \"a\"\n[[skills.examples]]\ninput = '{'\n", "x.toml:8: skills[0].examples[0].input: invalid JSON"},
		{"example 2 against schema", "x.toml", head + cmd + "[[skills]]\nid = \"a\"\ninput_schema = '{\"type\":\"object\",\"required\":[\"q\"]}'\n[[skills.examples]]\ninput = '{\"q\":1}'\n[[skills.examples]]\ninput = '{}'\n", "x.toml:11: skills[0].examples[1].input: does not match the input schema: at '': missing property 'q'"},
		{"inline skills", "x.toml", head + "skills = [{id = \"a\"}, {id = \"B\"}]\n" + cmd, `x.toml:3: skills[1].id: "B" is not a valid skill ID`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := ParseSpec(tt.path, []byte(tt.data))
			if err == nil {
				t.Fatalf("no error; spec %+v", spec)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error\n  %s\nwant prefix\n  %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error %q", err)
			}
		})
	}
}

func TestKeyLines(t *testing.T) {
	doc := `name = "x"
[limits]
timeout = "1s"
[[skills]]
id = "a"
[[skills.examples]]
input = "{}"
[[skills]]
id = "b"
[[skills.examples]]
input = "{}"
[[skills.examples]]
output = "{}"
`
	idx := keyLines([]byte(doc))
	for field, want := range map[string]int{
		"name": 1, "limits": 2, "limits.timeout": 3, "skills[0]": 4, "skills[0].id": 5,
		"skills[0].examples[0].input": 7, "skills[1].id": 9, "skills[1].examples[1].output": 13,
		"skills[1].examples[1].input": 12, "skills[1].input_schema": 8, "nothing": 0,
	} {
		if got := idx.line(field); got != want {
			t.Errorf("line(%q) = %d, want %d", field, got, want)
		}
	}
}
