package agents

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func FuzzParseSpec(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/good/*.toml")
	for _, p := range seeds {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(string(data))
		}
	}
	f.Add(BuiltinAgentFile)
	f.Add("name = \"x\"\nbackend = \"exec\"\n[[skills]]\nid = \"a\"\ninput_schema = '{\"$ref\":\"#/$defs/a\",\"$defs\":{\"a\":{\"type\":\"string\"}}}'\n[[skills.examples]]\ninput = '\"x\"'\n")
	f.Add("[[skills]]\n[[skills.examples]]\n[[skills]]\nskills.x = 1\n")
	f.Add("a.b.c = 1\n[a]\n[[a.b]]\n")
	f.Fuzz(func(t *testing.T, data string) {
		spec, err := ParseSpec("agents/x.toml", []byte(data))
		if err != nil {
			return
		}
		if spec.Name != "x" || spec.Limits.Concurrency <= 0 || spec.Limits.MaxInput <= 0 {
			t.Fatalf("accepted %+v", spec)
		}
		if _, err := SkillsFromSpec(spec); err != nil {
			t.Fatalf("accepted spec with bad skills: %v", err)
		}
	})
}

func FuzzMathEval(f *testing.F) {
	for _, s := range []string{"1 + 2 * 3", "sqrt(2) ** 2", "max(1, 2, 3) % 2", "-(-(1))", "pi * e", "1 / 0", "abs(", "1..3", "'x'", "[1][0]", "now()", "2 ^ 1e308"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := MathEval(s)
		if err != nil {
			if CodeOf(err) != CodeInvalidInput {
				t.Fatalf("%q: %v is not invalid-input", s, err)
			}
			return
		}
		if _, err := json.Marshal(v); err != nil {
			t.Fatalf("%q: value %v is not JSON: %v", s, v, err)
		}
	})
}

func FuzzJSONQuery(f *testing.F) {
	for _, q := range []string{".", ".a[]", "[.[] | . * 2]", "keys", "to_entries", "def f: f; f", "[limit(3; repeat(1))]", "tostream", "env", "now", "splits(\"a\")", "@base64d", "getpath([\"a\",0])", "reduce range(10) as $x (0; . + $x)"} {
		f.Add(`{"a":[1,2,3],"b":"text"}`, q)
	}
	f.Fuzz(func(t *testing.T, data, query string) {
		var v any
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		out, err := JSONQuery(ctx, v, query)
		if err != nil {
			if c := CodeOf(err); c != CodeInvalidInput && c != CodeTimeout && c != CodeCanceled {
				t.Fatalf("%q: %v", query, err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("%q: output %q is not JSON", query, out)
		}
	})
}
