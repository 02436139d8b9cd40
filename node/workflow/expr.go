package workflow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/itchyny/gojq"
)

// The variables an expression sees.
const (
	varInput = "$input"
	varSteps = "$steps"
)

// Bounds on evaluating one expression, so a runaway jq program cannot hold
// a workflow or the node's memory.
const (
	exprTimeout   = 10 * time.Second
	maxExprValues = 10000
)

// jqDenied shadows the jq builtins whose value depends on the clock or the
// time zone, as the builtin json.query does: a workflow's expressions are
// deterministic. User definitions shadow builtins in jq; these sit outside
// the user's expression.
var jqDenied = func() []*gojq.FuncDef {
	q, err := gojq.Parse(`def now: error("now is not available in workflows");` +
		`def localtime: error("localtime is not available in workflows");` +
		`def strflocaltime($f): error("strflocaltime is not available in workflows");` +
		`def input_filename: null; .`)
	if err != nil {
		panic(err)
	}
	return q.FuncDefs
}()

// expr is a compiled expression and the steps it refers to.
type expr struct {
	code *gojq.Code
	refs []string // step IDs, in order of first use
}

// compileExpr parses and compiles a jq expression with the variables
// $input and $steps, no environment, no input, no modules and no clock,
// and finds the steps it refers to: every use of $steps must index it
// with a constant step ID ($steps.fetch, $steps["fetch-page"]), so the
// dependencies are known before anything runs.
func compileExpr(src string) (*expr, error) {
	if len(src) > MaxExprLen {
		return nil, fmt.Errorf("the expression is %d bytes; at most %d", len(src), MaxExprLen)
	}
	q, err := gojq.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("the jq expression does not parse: %v", err)
	}
	if len(q.Imports) > 0 || q.Meta != nil {
		return nil, errors.New("a workflow's expressions may not import modules")
	}
	refs, err := stepRefs(q)
	if err != nil {
		return nil, err
	}
	q.FuncDefs = append(slices.Clone(jqDenied), q.FuncDefs...)
	code, err := gojq.Compile(q,
		gojq.WithVariables([]string{varInput, varSteps}),
		gojq.WithEnvironLoader(func() []string { return nil }))
	if err != nil {
		return nil, fmt.Errorf("the jq expression does not compile: %v", err)
	}
	return &expr{code: code, refs: refs}, nil
}

// stepRefs walks the parsed expression for uses of $steps. It walks the
// AST by reflection, visiting every *gojq.Term, *gojq.Pattern,
// *gojq.PatternObject and *gojq.FuncDef wherever it sits, so no kind of
// node (string interpolation, reduce, try, object keys ...) is missed.
func stepRefs(q *gojq.Query) ([]string, error) {
	var refs []string
	var err error
	rebinds := func(name string) {
		if err == nil && (name == varSteps || name == varInput) {
			err = fmt.Errorf("the expression may not bind %s; it is the workflow's", name)
		}
	}
	walkAST(reflect.ValueOf(q), func(v any) {
		if err != nil {
			return
		}
		switch n := v.(type) {
		case *gojq.Term:
			if n.Type != gojq.TermTypeFunc || n.Func == nil || n.Func.Name != varSteps {
				return
			}
			id, ok := constIndex(n.SuffixList)
			if !ok {
				err = errors.New("$steps must be indexed with a step ID, as in $steps.fetch or $steps[\"fetch-page\"], so the step's dependencies are known")
				return
			}
			if !slices.Contains(refs, id) {
				refs = append(refs, id)
			}
		case *gojq.Pattern:
			rebinds(n.Name)
		case *gojq.PatternObject:
			rebinds(n.Key)
		case *gojq.FuncDef:
			for _, a := range n.Args {
				rebinds(a)
			}
		}
	})
	return refs, err
}

// constIndex returns the constant key of the first index in suffixes
// ($steps.a, $steps."a", $steps["a"], with any ? before it).
func constIndex(suffixes []*gojq.Suffix) (string, bool) {
	for _, s := range suffixes {
		if s.Index == nil {
			if s.Optional && !s.Iter {
				continue
			}
			return "", false
		}
		ix := s.Index
		switch {
		case ix.IsSlice || ix.End != nil:
			return "", false
		case ix.Name != "":
			return ix.Name, true
		case ix.Str != nil:
			return constString(ix.Str)
		case ix.Start != nil:
			q := ix.Start
			if q.Term == nil || q.Left != nil || q.Right != nil || len(q.FuncDefs) > 0 || len(q.Patterns) > 0 ||
				q.Term.Type != gojq.TermTypeString || len(q.Term.SuffixList) > 0 {
				return "", false
			}
			return constString(q.Term.Str)
		}
		return "", false
	}
	return "", false
}

func constString(s *gojq.String) (string, bool) {
	if s == nil || len(s.Queries) > 0 {
		return "", false
	}
	return s.Str, true
}

var nodeTypes = map[reflect.Type]bool{
	reflect.TypeFor[*gojq.Term]():          true,
	reflect.TypeFor[*gojq.Pattern]():       true,
	reflect.TypeFor[*gojq.PatternObject](): true,
	reflect.TypeFor[*gojq.FuncDef]():       true,
}

// walkAST calls fn for every node of interest reachable from v through
// pointers, slices and struct fields. gojq's AST is a tree.
func walkAST(v reflect.Value, fn func(any)) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		if nodeTypes[v.Type()] {
			fn(v.Interface())
		}
		walkAST(v.Elem(), fn)
	case reflect.Slice:
		for i := range v.Len() {
			walkAST(v.Index(i), fn)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				walkAST(v.Field(i), fn)
			}
		}
	}
}

// env is what an expression runs over: the workflow's input and the
// outputs of the steps it may see (null for a skipped step).
type env struct {
	input any
	steps map[string]any
}

// decodeJSON decodes raw with numbers as json.Number, as gojq takes them.
func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value")
	}
	return v, nil
}

// eval runs e and returns up to max values. Errors are sentences.
func (e *expr) eval(ctx context.Context, in env, max int) ([]any, error) {
	ctx, cancel := context.WithTimeout(ctx, exprTimeout)
	defer cancel()
	steps := in.steps
	if steps == nil {
		steps = map[string]any{}
	}
	iter := e.code.RunWithContext(ctx, nil, in.input, steps)
	var out []any
	for len(out) < max {
		v, ok := iter.Next()
		if !ok {
			break
		}
		if err, ok := v.(error); ok {
			if ctx.Err() != nil {
				if errors.Is(ctx.Err(), context.DeadlineExceeded) {
					return nil, fmt.Errorf("the expression ran longer than %s", exprTimeout)
				}
				return nil, ctx.Err()
			}
			var he *gojq.HaltError
			if errors.As(err, &he) && he.Value() == nil {
				break // halt: stop with the values so far
			}
			return nil, fmt.Errorf("the expression failed: %v", err)
		}
		out = append(out, v)
	}
	return out, nil
}

// object evaluates e to exactly one JSON object: a step's input.
func (e *expr) object(ctx context.Context, in env) (json.RawMessage, error) {
	vs, err := e.eval(ctx, in, 2)
	if err != nil {
		return nil, err
	}
	switch {
	case len(vs) == 0:
		return nil, errors.New("the expression gave no value; it must give one object")
	case len(vs) > 1:
		return nil, errors.New("the expression gave several values; it must give one object")
	}
	if _, ok := vs[0].(map[string]any); !ok {
		return nil, fmt.Errorf("the expression gave %s; it must give an object", jsonKind(vs[0]))
	}
	return marshal(vs[0])
}

// truthy evaluates a when expression: its first value, as jq's if does;
// no value is false.
func (e *expr) truthy(ctx context.Context, in env) (bool, error) {
	vs, err := e.eval(ctx, in, 1)
	if err != nil || len(vs) == 0 {
		return false, err
	}
	return vs[0] != nil && vs[0] != false, nil
}

// value evaluates the output expression as json.query does: one value as
// is, several as an array, none as null.
func (e *expr) value(ctx context.Context, in env) (json.RawMessage, error) {
	vs, err := e.eval(ctx, in, maxExprValues+1)
	if err != nil {
		return nil, err
	}
	var v any
	switch len(vs) {
	case 0:
	case 1:
		v = vs[0]
	default:
		if len(vs) > maxExprValues {
			return nil, fmt.Errorf("the expression gave more than %d values", maxExprValues)
		}
		v = vs
	}
	return marshal(v)
}

// marshal writes a jq value as JSON; gojq.Marshal handles what
// json.Marshal cannot (big integers, NaN as null, as jq does).
func marshal(v any) (json.RawMessage, error) {
	b, err := gojq.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("the value is not JSON: %v", err)
	}
	return b, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return "a number"
	}
}
