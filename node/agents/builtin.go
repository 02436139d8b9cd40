package agents

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/itchyny/gojq"
)

// builtinSkill is a skill that ships in the binary.
type builtinSkill struct {
	skill Skill
	run   func(ctx context.Context, input json.RawMessage) (any, error)
}

// Limits of the builtin skills, also stated in their schemas.
const (
	maxQueryLen = 4 << 10
	maxExprLen  = 1 << 10
)

var builtinSkills = []builtinSkill{
	{
		skill: Skill{
			ID:          "text.stats",
			Description: "Counts the words, lines and characters (Unicode code points) of a text, as wc does: lines are newline characters plus a last unterminated line, words are runs of non-space characters.",
			Tags:        []string{"text", "builtin", "deterministic"},
			Input: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string","description":"the text to count"}},` +
				`"required":["text"],"additionalProperties":false}`),
			Output: json.RawMessage(`{"type":"object","properties":{"words":{"type":"integer","minimum":0},` +
				`"lines":{"type":"integer","minimum":0},"chars":{"type":"integer","minimum":0}},` +
				`"required":["words","lines","chars"],"additionalProperties":false}`),
			Examples: []Example{
				{Input: json.RawMessage(`{"text":"hello wide world\nbye"}`), Output: json.RawMessage(`{"words":4,"lines":2,"chars":20}`)},
				{Input: json.RawMessage(`{"text":""}`), Output: json.RawMessage(`{"words":0,"lines":0,"chars":0}`)},
			},
		},
		run: runTextStats,
	},
	{
		skill: Skill{
			ID:          "json.query",
			Description: "Runs a jq query over JSON data. A query yielding several values gives an array of them, none gives null. No environment, input or time functions.",
			Tags:        []string{"json", "jq", "builtin", "deterministic"},
			Input: json.RawMessage(`{"type":"object","properties":{"data":{"description":"the JSON value the query reads"},` +
				`"query":{"type":"string","minLength":1,"maxLength":4096,"description":"a jq program"}},` +
				`"required":["data","query"],"additionalProperties":false}`),
			Output: json.RawMessage(`{"type":"object","properties":{"result":{"description":"the query's value, an array of its values if several, null if none"}},` +
				`"required":["result"],"additionalProperties":false}`),
			Examples: []Example{
				{Input: json.RawMessage(`{"data":{"items":[{"n":1},{"n":2}]},"query":"[.items[].n] | add"}`), Output: json.RawMessage(`{"result":3}`)},
				{Input: json.RawMessage(`{"data":[1,2,3],"query":".[] | select(. > 1)"}`), Output: json.RawMessage(`{"result":[2,3]}`)},
			},
		},
		run: runJSONQuery,
	},
	{
		skill: Skill{
			ID: "math.eval",
			Description: "Evaluates an arithmetic expression: numbers, + - * / % ** ^, parentheses, the constants pi and e, and the functions " +
				strings.Join(mathFuncNames(), ", ") + ".",
			Tags: []string{"math", "builtin", "deterministic"},
			Input: json.RawMessage(`{"type":"object","properties":{"expr":{"type":"string","minLength":1,"maxLength":1024,"description":"the expression"}},` +
				`"required":["expr"],"additionalProperties":false}`),
			Output: json.RawMessage(`{"type":"object","properties":{"value":{"type":"number"}},` +
				`"required":["value"],"additionalProperties":false}`),
			Examples: []Example{
				{Input: json.RawMessage(`{"expr":"(1 + 2) * 4"}`), Output: json.RawMessage(`{"value":12}`)},
				{Input: json.RawMessage(`{"expr":"sqrt(2) ** 2 + max(1, 3)"}`)},
			},
		},
		run: runMathEval,
	},
}

// BuiltinSkills returns the skills the binary ships, with their schemas.
func BuiltinSkills() []Skill {
	out := make([]Skill, len(builtinSkills))
	for i, b := range builtinSkills {
		out[i] = b.skill
	}
	return out
}

func findBuiltin(id string) *builtinSkill {
	for i := range builtinSkills {
		if builtinSkills[i].skill.ID == id {
			return &builtinSkills[i]
		}
	}
	return nil
}

// BuiltinAgentFile is the agent file Load writes into a new agents
// directory: the builtin agent, shared with every community.
const BuiltinAgentFile = `# The builtin agent: deterministic skills that ship in the agora binary,
# so a node is useful with no model. The schemas come from the binary;
# list the skills to offer (none listed = all of them).
name = "builtin"
description = "Deterministic utilities: text statistics, jq queries over JSON, arithmetic."
version = "1"
backend = "builtin"

[sharing]
mode = "community"

# The skills take microseconds: many may run at once.
[limits]
concurrency = 64
rate_per_peer = 200

[[skills]]
id = "text.stats"

[[skills]]
id = "json.query"

[[skills]]
id = "math.eval"
`

// BuiltinFactory builds the "builtin" backend. Its [[skills]] name builtin
// skills by ID and may re-describe or re-tag them; the schemas and examples
// are the binary's.
var BuiltinFactory Factory = func(ctx context.Context, spec *Spec, env Env) (Backend, error) {
	b := &builtinBackend{}
	if len(spec.Skills) == 0 {
		b.skills = builtinSkills
		return b, nil
	}
	for i, ss := range spec.Skills {
		bs := findBuiltin(ss.ID)
		if bs == nil {
			return nil, fmt.Errorf("skills[%d].id: %q is not a builtin skill; this binary has %s", i, ss.ID, strings.Join(builtinIDs(), ", "))
		}
		for _, f := range []struct{ name, val string }{
			{"input_schema", ss.InputSchema}, {"output_schema", ss.OutputSchema}, {"prompt", ss.Prompt},
		} {
			if f.val != "" {
				return nil, fmt.Errorf("skills[%d].%s: builtin skills take it from the binary", i, f.name)
			}
		}
		if len(ss.Args) > 0 || len(ss.Examples) > 0 {
			return nil, fmt.Errorf("skills[%d]: builtin skills take no args or examples", i)
		}
		c := *bs
		if ss.Description != "" {
			c.skill.Description = ss.Description
		}
		if len(ss.Tags) > 0 {
			c.skill.Tags = ss.Tags
		}
		b.skills = append(b.skills, c)
	}
	return b, nil
}

func builtinIDs() []string {
	ids := make([]string, len(builtinSkills))
	for i, b := range builtinSkills {
		ids[i] = b.skill.ID
	}
	return ids
}

type builtinBackend struct {
	skills []builtinSkill // read-only after the factory
}

func (b *builtinBackend) Skills() []Skill {
	out := make([]Skill, len(b.skills))
	for i, s := range b.skills {
		out[i] = s.skill
	}
	return out
}

func (b *builtinBackend) Run(ctx context.Context, skill string, input json.RawMessage, _ Progress) (json.RawMessage, error) {
	for _, s := range b.skills {
		if s.skill.ID == skill {
			v, err := s.run(ctx, input)
			if err != nil {
				return nil, err
			}
			if raw, ok := v.(json.RawMessage); ok {
				return raw, nil
			}
			return json.Marshal(v)
		}
	}
	return nil, Errorf(CodeUnknownSkill, "the builtin agent has no skill %q", skill)
}

func (b *builtinBackend) Close() error { return nil }

// OutputConforms implements Conformer: each builtin skill returns a Go
// value of its output schema's shape (FuzzBuiltinOutputConforms).
func (b *builtinBackend) OutputConforms() bool { return true }

// decodeInput decodes a builtin skill's input (already schema-checked, but
// Run may be called directly).
func decodeInput(input json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return Errorf(CodeInvalidInput, "the input is not the expected object: %v", err)
	}
	return nil
}

func runTextStats(_ context.Context, input json.RawMessage) (any, error) {
	var in struct {
		Text string `json:"text"`
	}
	if err := decodeInput(input, &in); err != nil {
		return nil, err
	}
	return TextStats(in.Text), nil
}

// Stats is the output of text.stats.
type Stats struct {
	Words int `json:"words"`
	Lines int `json:"lines"`
	Chars int `json:"chars"`
}

// TextStats counts as wc does, plus a last unterminated line, and chars as
// Unicode code points.
func TextStats(s string) Stats {
	lines := strings.Count(s, "\n")
	if s != "" && !strings.HasSuffix(s, "\n") {
		lines++
	}
	return Stats{Words: len(strings.Fields(s)), Lines: lines, Chars: utf8.RuneCountInString(s)}
}

// jqDenied shadows the jq builtins whose value depends on the clock or the
// time zone, so json.query stays deterministic. User definitions shadow
// builtins in jq; these sit outside the user's query.
var jqDenied = func() []*gojq.FuncDef {
	q, err := gojq.Parse(`def now: error("now is not available in json.query");` +
		`def localtime: error("localtime is not available in json.query");` +
		`def strflocaltime($f): error("strflocaltime is not available in json.query");` +
		`def input_filename: null; .`)
	if err != nil {
		panic(err)
	}
	return q.FuncDefs
}()

func runJSONQuery(ctx context.Context, input json.RawMessage) (any, error) {
	var in struct {
		Data  any    `json:"data"`
		Query string `json:"query"`
	}
	if err := decodeInput(input, &in); err != nil {
		return nil, err
	}
	result, err := JSONQuery(ctx, in.Data, in.Query)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteString(`{"result":`)
	buf.Write(result)
	buf.WriteByte('}')
	if !json.Valid(buf.Bytes()) { // one level deeper than result
		return nil, Errorf(CodeInvalidInput, "the query's value nests deeper than JSON readers allow")
	}
	return json.RawMessage(buf.Bytes()), nil
}

// JSONQuery runs a jq query over data (as decoded with json.Number) and
// returns its value as JSON: one value as is, several as an array, none as
// null. Bad queries and runtime errors are CodeInvalidInput; ctx bounds
// the run.
func JSONQuery(ctx context.Context, data any, query string) (json.RawMessage, error) {
	if len(query) > maxQueryLen {
		return nil, Errorf(CodeInvalidInput, "the query is longer than %d bytes", maxQueryLen)
	}
	q, err := gojq.Parse(query)
	if err != nil {
		return nil, Errorf(CodeInvalidInput, "the query does not parse: %v", err)
	}
	if len(q.Imports) > 0 {
		return nil, Errorf(CodeInvalidInput, "the query may not import modules")
	}
	q.FuncDefs = append(append([]*gojq.FuncDef(nil), jqDenied...), q.FuncDefs...)
	code, err := gojq.Compile(q, gojq.WithEnvironLoader(func() []string { return nil }))
	if err != nil {
		return nil, Errorf(CodeInvalidInput, "the query does not compile: %v", err)
	}
	var values []any
	iter := code.RunWithContext(ctx, data)
	for {
		v, ok := iter.Next()
		if !ok {
			break
		}
		if err, ok := v.(error); ok {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, Errorf(CodeInvalidInput, "the query failed: %v", err)
		}
		values = append(values, v)
	}
	var out any
	switch len(values) {
	case 0:
	case 1:
		out = values[0]
	default:
		out = values
	}
	// gojq.Marshal writes what json.Marshal cannot (big integers, and NaN
	// as null, as jq does), and nests as deep as the value does.
	raw, err := gojq.Marshal(out)
	if err != nil {
		return nil, Errorf(CodeInvalidInput, "the query's value cannot be written as JSON: %v", err)
	}
	if !json.Valid(raw) {
		return nil, Errorf(CodeInvalidInput, "the query's value nests deeper than JSON readers allow")
	}
	return raw, nil
}

// mathFuncs are the only functions math.eval knows; everything is float64.
var mathFuncs = map[string]func(args []float64) (float64, error){
	"abs":   unary(math.Abs),
	"sqrt":  unary(math.Sqrt),
	"cbrt":  unary(math.Cbrt),
	"floor": unary(math.Floor),
	"ceil":  unary(math.Ceil),
	"round": unary(math.Round),
	"trunc": unary(math.Trunc),
	"exp":   unary(math.Exp),
	"ln":    unary(math.Log),
	"log2":  unary(math.Log2),
	"log10": unary(math.Log10),
	"sin":   unary(math.Sin),
	"cos":   unary(math.Cos),
	"tan":   unary(math.Tan),
	"asin":  unary(math.Asin),
	"acos":  unary(math.Acos),
	"atan":  unary(math.Atan),
	"pow":   binary(math.Pow),
	"atan2": binary(math.Atan2),
	"hypot": binary(math.Hypot),
	"mod":   binary(math.Mod),
	"min":   variadic(math.Min),
	"max":   variadic(math.Max),
}

var mathConsts = map[string]any{"pi": math.Pi, "e": math.E}

func mathFuncNames() []string {
	names := make([]string, 0, len(mathFuncs))
	for n := range mathFuncs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func unary(f func(float64) float64) func([]float64) (float64, error) {
	return func(a []float64) (float64, error) {
		if len(a) != 1 {
			return 0, fmt.Errorf("takes 1 argument, not %d", len(a))
		}
		return f(a[0]), nil
	}
}

func binary(f func(float64, float64) float64) func([]float64) (float64, error) {
	return func(a []float64) (float64, error) {
		if len(a) != 2 {
			return 0, fmt.Errorf("takes 2 arguments, not %d", len(a))
		}
		return f(a[0], a[1]), nil
	}
}

func variadic(f func(float64, float64) float64) func([]float64) (float64, error) {
	return func(a []float64) (float64, error) {
		if len(a) == 0 {
			return 0, fmt.Errorf("takes at least 1 argument")
		}
		v := a[0]
		for _, x := range a[1:] {
			v = f(v, x)
		}
		return v, nil
	}
}

// mathOptions are expr's options for math.eval: no builtins, no variables
// but the constants, our functions, and float arithmetic throughout (so
// integers never wrap around); % is math.Mod.
var mathOptions = func() []expr.Option {
	opts := []expr.Option{
		expr.Env(mathConsts),
		expr.DisableAllBuiltins(),
		expr.Function("_fmod", func(p ...any) (any, error) { return math.Mod(p[0].(float64), p[1].(float64)), nil },
			new(func(float64, float64) float64)),
		expr.Operator("%", "_fmod"),
	}
	for name, f := range mathFuncs {
		opts = append(opts, expr.Function(name, func(params ...any) (any, error) {
			args := make([]float64, len(params))
			for i, p := range params {
				x, ok := p.(float64)
				if !ok {
					return nil, fmt.Errorf("%s: arguments must be numbers", name)
				}
				args[i] = x
			}
			v, err := f(args)
			if err != nil {
				return nil, fmt.Errorf("%s %v", name, err)
			}
			return v, nil
		}))
	}
	return opts
}()

// numbersOnly rejects every expression node but numbers, arithmetic and
// calls of mathFuncs; it turns integer literals into floats. It runs as an
// expr patch, before type checking.
type numbersOnly struct{ err error }

func (v *numbersOnly) Visit(node *ast.Node) {
	if v.err != nil {
		return
	}
	switch n := (*node).(type) {
	case *ast.IntegerNode:
		ast.Patch(node, &ast.FloatNode{Value: float64(n.Value)})
	case *ast.FloatNode:
	case *ast.UnaryNode:
		if n.Operator != "-" && n.Operator != "+" {
			v.err = fmt.Errorf("operator %q is not allowed", n.Operator)
		}
	case *ast.BinaryNode:
		switch n.Operator {
		case "+", "-", "*", "/", "%", "**", "^":
		default:
			v.err = fmt.Errorf("operator %q is not allowed", n.Operator)
		}
	case *ast.IdentifierNode:
		if _, ok := mathConsts[n.Value]; !ok {
			if _, ok := mathFuncs[n.Value]; !ok {
				v.err = fmt.Errorf("unknown name %q", n.Value)
			}
		}
	case *ast.CallNode:
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok {
			v.err = fmt.Errorf("only the math functions can be called")
		} else if _, ok := mathFuncs[id.Value]; !ok {
			v.err = fmt.Errorf("unknown function %q", id.Value)
		}
	default:
		v.err = fmt.Errorf("only numbers, arithmetic and math functions are allowed")
	}
}

func runMathEval(_ context.Context, input json.RawMessage) (any, error) {
	var in struct {
		Expr string `json:"expr"`
	}
	if err := decodeInput(input, &in); err != nil {
		return nil, err
	}
	v, err := MathEval(in.Expr)
	if err != nil {
		return nil, err
	}
	return map[string]float64{"value": v}, nil
}

// MathEval evaluates an arithmetic expression (see math.eval). Every error
// is CodeInvalidInput.
func MathEval(s string) (float64, error) {
	if len(s) > maxExprLen {
		return 0, Errorf(CodeInvalidInput, "the expression is longer than %d bytes", maxExprLen)
	}
	if strings.TrimSpace(s) == "" {
		return 0, Errorf(CodeInvalidInput, "the expression is empty")
	}
	guard := &numbersOnly{}
	opts := append(append([]expr.Option(nil), mathOptions...), expr.Patch(guard))
	prog, err := expr.Compile(s, opts...)
	if guard.err != nil {
		return 0, Errorf(CodeInvalidInput, "%v", guard.err)
	}
	if err != nil {
		return 0, Errorf(CodeInvalidInput, "%s", firstLine(err.Error()))
	}
	out, err := expr.Run(prog, mathConsts)
	if err != nil {
		return 0, Errorf(CodeInvalidInput, "%s", firstLine(err.Error()))
	}
	var f float64
	switch x := out.(type) {
	case float64:
		f = x
	case int:
		f = float64(x)
	default:
		return 0, Errorf(CodeInvalidInput, "the expression's value is a %T, not a number", out)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, Errorf(CodeInvalidInput, "the expression's value is %v, not a finite number", f)
	}
	return f, nil
}
