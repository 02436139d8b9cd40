package agents

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func runBuiltin(t *testing.T, skill, input string) (string, error) {
	t.Helper()
	b, err := BuiltinFactory(context.Background(), &Spec{Name: "builtin", Backend: "builtin"}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := b.Run(ctx, skill, json.RawMessage(input), nil)
	return string(out), err
}

func TestTextStats(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{"", `{"words":0,"lines":0,"chars":0}`},
		{"hello", `{"words":1,"lines":1,"chars":5}`},
		{"hello\n", `{"words":1,"lines":1,"chars":6}`},
		{"a b\nc", `{"words":3,"lines":2,"chars":5}`},
		{"\n\n", `{"words":0,"lines":2,"chars":2}`},
		{"  spaced \t out\u00a0here\u3000x  ", `{"words":4,"lines":1,"chars":23}`},
		{"héllo wörld", `{"words":2,"lines":1,"chars":11}`},
		{"日本語 テキスト", `{"words":2,"lines":1,"chars":8}`},
		{"emoji 👋🏽\r\nok", `{"words":3,"lines":2,"chars":12}`},
	} {
		in, _ := json.Marshal(map[string]string{"text": tt.text})
		got, err := runBuiltin(t, "text.stats", string(in))
		if err != nil || got != tt.want {
			t.Errorf("%q: %s %v, want %s", tt.text, got, err, tt.want)
		}
	}
}

func TestJSONQuery(t *testing.T) {
	for _, tt := range []struct{ input, want, code string }{
		{`{"data":{"a":[1,2,3]},"query":".a"}`, `{"result":[1,2,3]}`, ""},
		{`{"data":{"a":[1,2,3]},"query":".a[]"}`, `{"result":[1,2,3]}`, ""},
		{`{"data":{"a":[1,2,3]},"query":".a[] | select(. > 5)"}`, `{"result":null}`, ""},
		{`{"data":[1,2],"query":"map(. * 10) | add"}`, `{"result":30}`, ""},
		{`{"data":null,"query":"[range(3)]"}`, `{"result":[0,1,2]}`, ""},
		{`{"data":{"n":12345678901234567890123},"query":".n"}`, `{"result":12345678901234567890123}`, ""},
		{`{"data":{"b":1,"a":2},"query":"keys"}`, `{"result":["a","b"]}`, ""},
		{`{"data":"x","query":"env"}`, `{"result":{}}`, ""},
		{`{"data":"x","query":"$ENV.HOME"}`, `{"result":null}`, ""},
		{`{"data":"x","query":"input_filename"}`, `{"result":null}`, ""},
		{`{"data":0,"query":"0 | todate"}`, `{"result":"1970-01-01T00:00:00Z"}`, ""},
		{`{"data":"x","query":"now"}`, "", CodeInvalidInput},
		{`{"data":"x","query":"localtime"}`, "", CodeInvalidInput},
		{`{"data":"x","query":"input"}`, "", CodeInvalidInput},
		{`{"data":"x","query":"import \"m\" as m; ."}`, "", CodeInvalidInput},
		{`{"data":"x","query":"include \"m\"; ."}`, "", CodeInvalidInput},
		{`{"data":"x","query":".["}`, "", CodeInvalidInput},
		{`{"data":"x","query":"error(\"no\")"}`, "", CodeInvalidInput},
		{`{"data":"x","query":".a"}`, "", CodeInvalidInput},
		{`{"data":"x","query":"halt_error"}`, "", CodeInvalidInput},
		{`{"data":"x","query":"` + strings.Repeat(".", maxQueryLen+1) + `"}`, "", CodeInvalidInput},
	} {
		got, err := runBuiltin(t, "json.query", tt.input)
		if CodeOf(err) != tt.code || got != tt.want {
			t.Errorf("%.80s: %s %v, want %s %s", tt.input, got, err, tt.want, tt.code)
		}
	}
}

func TestJSONQueryHonoursContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := JSONQuery(ctx, nil, "[range(1e15)] | length")
	if CodeOf(err) != CodeTimeout {
		t.Fatalf("err %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	_, err = JSONQuery(ctx, nil, "repeat(1)")
	if CodeOf(err) != CodeTimeout {
		t.Fatalf("err %v", err)
	}
}

func TestMathEval(t *testing.T) {
	for _, tt := range []struct {
		expr string
		want float64
		ok   bool
	}{
		{"1 + 2 * 3", 7, true},
		{"(1 + 2) * 4", 12, true},
		{"7 / 2", 3.5, true},
		{"7 % 3", 1, true},
		{"-7 % 3", -1, true},
		{"2 ** 10", 1024, true},
		{"2 ^ 0.5 * 2 ^ 0.5", 2.0000000000000004, true},
		{"-3 + +4", 1, true},
		{"9223372036854775807 * 2", 1.8446744073709552e19, true},
		{"abs(-2.5)", 2.5, true},
		{"sqrt(16) + floor(1.7) + ceil(1.2) + round(2.5)", 10, true},
		{"min(3, 1, 2) + max(3, 1, 2)", 4, true},
		{"pow(2, 3) + mod(7, 4)", 11, true},
		{"pi", 3.141592653589793, true},
		{"ln(e)", 1, true},
		{"1e3 + 0.5", 1000.5, true},
		{"1 / 0", 0, false},
		{"sqrt(-1)", 0, false},
		{"1 % 0", 0, false},
		{"", 0, false},
		{"   ", 0, false},
		{"x + 1", 0, false},
		{"abs()", 0, false},
		{"abs(1, 2)", 0, false},
		{"len('abc')", 0, false},
		{"'abc'", 0, false},
		{"1 == 1", 0, false},
		{"true", 0, false},
		{"[1, 2]", 0, false},
		{"1..1000000000", 0, false},
		{"{a: 1}", 0, false},
		{"1 ? 2 : 3", 0, false},
		{"let x = 2; x", 0, false},
		{"now()", 0, false},
		{"_fmod(1, 2)", 0, false},
		{"abs(-1).x", 0, false},
		{"1 +", 0, false},
		{strings.Repeat("1+", 600) + "1", 0, false},
	} {
		got, err := MathEval(tt.expr)
		if tt.ok && (err != nil || got != tt.want) {
			t.Errorf("%.40q = %v, %v; want %v", tt.expr, got, err, tt.want)
		}
		if !tt.ok && CodeOf(err) != CodeInvalidInput {
			t.Errorf("%.40q = %v, %v; want an invalid-input error", tt.expr, got, err)
		}
	}
	out, err := runBuiltin(t, "math.eval", `{"expr":"1.5 * 4"}`)
	if err != nil || out != `{"value":6}` {
		t.Errorf("run: %s %v", out, err)
	}
}

// TestBuiltinSkillsSelfConsistent checks each builtin skill's schemas
// compile and its examples pass them and give the stated output.
func TestBuiltinSkillsSelfConsistent(t *testing.T) {
	for _, sk := range BuiltinSkills() {
		in, err := CompileSchema(sk.Input)
		if err != nil {
			t.Fatalf("%s input schema: %v", sk.ID, err)
		}
		out, err := CompileSchema(sk.Output)
		if err != nil {
			t.Fatalf("%s output schema: %v", sk.ID, err)
		}
		if len(sk.Examples) == 0 {
			t.Errorf("%s has no examples", sk.ID)
		}
		for _, ex := range sk.Examples {
			if err := in.Validate(ex.Input); err != nil {
				t.Errorf("%s example %s: %v", sk.ID, ex.Input, err)
			}
			got, err := runBuiltin(t, sk.ID, string(ex.Input))
			if err != nil {
				t.Errorf("%s example %s: %v", sk.ID, ex.Input, err)
				continue
			}
			if err := out.Validate(json.RawMessage(got)); err != nil {
				t.Errorf("%s example output %s: %v", sk.ID, got, err)
			}
			if len(ex.Output) > 0 && got != string(ex.Output) {
				t.Errorf("%s example %s gave %s, says %s", sk.ID, ex.Input, got, ex.Output)
			}
		}
		if err := in.Validate([]byte(`{"unexpected":1}`)); err == nil {
			t.Errorf("%s input schema accepts anything", sk.ID)
		}
	}
}

func TestBuiltinFactory(t *testing.T) {
	spec, err := ParseSpec("builtin.toml", []byte(BuiltinAgentFile))
	if err != nil {
		t.Fatal(err)
	}
	b, err := BuiltinFactory(context.Background(), spec, Env{})
	if err != nil || len(b.Skills()) != 3 {
		t.Fatalf("%v %v", b, err)
	}
	for _, tt := range []struct{ file, want string }{
		{"name = \"b\"\nbackend = \"builtin\"\n[[skills]]\nid = \"text.nope\"\n", `skills[0].id: "text.nope" is not a builtin skill; this binary has text.stats, json.query, math.eval`},
		{"name = \"b\"\nbackend = \"builtin\"\n[[skills]]\nid = \"math.eval\"\ninput_schema = '{}'\n", "skills[0].input_schema: builtin skills take it from the binary"},
	} {
		spec, err := ParseSpec("", []byte(tt.file))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := BuiltinFactory(context.Background(), spec, Env{}); err == nil || err.Error() != tt.want {
			t.Errorf("%v, want %q", err, tt.want)
		}
	}
	spec, _ = ParseSpec("", []byte("name = \"b\"\nbackend = \"builtin\"\n[[skills]]\nid = \"math.eval\"\ndescription = \"sums\"\n"))
	b, err = BuiltinFactory(context.Background(), spec, Env{})
	if err != nil || len(b.Skills()) != 1 || b.Skills()[0].Description != "sums" || len(b.Skills()[0].Input) == 0 {
		t.Fatalf("%+v %v", b.Skills(), err)
	}
	if _, err := b.Run(context.Background(), "text.stats", []byte(`{"text":""}`), nil); CodeOf(err) != CodeUnknownSkill {
		t.Errorf("unlisted skill ran: %v", err)
	}
}
