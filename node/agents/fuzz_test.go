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

// FuzzBuiltinOutputConforms backs the builtin backend's Conformer claim:
// whatever input passes a builtin skill's input schema, an output it
// returns passes the output schema, which the Manager does not check for
// it.
func FuzzBuiltinOutputConforms(f *testing.F) {
	skills := BuiltinSkills()
	type compiled struct{ in, out *Schema }
	schemas := make([]compiled, len(skills))
	for i, sk := range skills {
		in, err := CompileSchema(sk.Input)
		if err != nil {
			f.Fatal(err)
		}
		out, err := CompileSchema(sk.Output)
		if err != nil {
			f.Fatal(err)
		}
		schemas[i] = compiled{in, out}
		for _, ex := range sk.Examples {
			f.Add(uint8(i), string(ex.Input))
		}
	}
	f.Add(uint8(0), `{"text":"\u0000\n\n  x\ty\r\n"}`)
	f.Add(uint8(1), `{"data":1e400,"query":"."}`)
	f.Add(uint8(1), `{"data":{"a":[1,2]},"query":"empty"}`)
	f.Add(uint8(1), `{"data":null,"query":"[range(5)] | .[]"}`)
	f.Add(uint8(1), `{"data":null,"query":"reduce range(10001) as $i (null; [.])"}`)
	f.Add(uint8(1), `{"data":null,"query":"reduce range(9999) as $i (null; [.])"}`)
	f.Add(uint8(2), `{"expr":"2 ** 2000"}`)
	f.Add(uint8(2), `{"expr":"0/0"}`)
	b, err := BuiltinFactory(context.Background(), &Spec{Name: "builtin", Backend: "builtin"}, Env{})
	if err != nil {
		f.Fatal(err)
	}
	if c, ok := b.(Conformer); !ok || !c.OutputConforms() {
		f.Fatal("the builtin backend does not claim conforming outputs")
	}
	f.Fuzz(func(t *testing.T, which uint8, input string) {
		i := int(which) % len(skills)
		if schemas[i].in.Validate(json.RawMessage(input)) != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		out, err := b.Run(ctx, skills[i].ID, json.RawMessage(input), nil)
		if err != nil {
			if c := CodeOf(err); c != CodeInvalidInput && c != CodeTimeout && c != CodeCanceled {
				t.Fatalf("%s %q: %v", skills[i].ID, input, err)
			}
			return
		}
		if err := schemas[i].out.Validate(out); err != nil {
			t.Fatalf("%s %q gave %s, which fails its output schema: %v", skills[i].ID, input, out, err)
		}
	})
}
