package agents

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Defaults for Limits left at zero in an agent file.
const (
	DefaultConcurrency = 4
	DefaultTimeout     = 60 * time.Second
	DefaultMaxInput    = 256 << 10
	DefaultMaxOutput   = 1 << 20
	DefaultRatePerPeer = 5
)

// Backends are the backend names an agent file may use. The Manager runs
// only those it has a Factory for.
var Backends = []string{"builtin", "exec", "openai", "mcp", "workflow"}

var (
	agentNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	skillIDRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)
	// typeMismatchRE matches go-toml's wording, which names Go types.
	typeMismatchRE = regexp.MustCompile(`^cannot decode TOML (.+) into struct field \S+ of type (\S+)$`)
)

// ValidAgentName reports whether name can name an agent (and its file).
func ValidAgentName(name string) bool { return agentNameRE.MatchString(name) }

// ValidSkillID reports whether id can name a skill.
func ValidSkillID(id string) bool { return skillIDRE.MatchString(id) }

// SpecError is a problem in an agent file: where it is and what is wrong.
// Line is 0 when unknown; Field is a path such as `skills[1].input_schema`.
type SpecError struct {
	Path  string
	Line  int
	Field string
	Err   error
}

func (e *SpecError) Error() string {
	var b strings.Builder
	switch {
	case e.Path != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.Path, e.Line)
	case e.Path != "":
		b.WriteString(e.Path + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *SpecError) Unwrap() error { return e.Err }

// ParseSpec reads an agent file. Unknown fields are errors; limits left at
// zero take their defaults. path is used in messages and, when it names a
// .toml file, the agent's name must be the file's base name. The schemas
// of [[skills]] must compile; a backend's own section is checked by its
// Factory.
func ParseSpec(path string, data []byte) (*Spec, error) {
	var spec Spec
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return nil, decodeError(path, err)
	}
	spec.Path = path
	if field, err := validateSpec(&spec); err != nil {
		return nil, &SpecError{Path: path, Line: keyLines(data).line(field), Field: field, Err: err}
	}
	applyDefaults(&spec.Limits)
	return &spec, nil
}

// decodeError turns go-toml's errors into a SpecError with a line.
func decodeError(path string, err error) error {
	var sme *toml.StrictMissingError
	if errors.As(err, &sme) && len(sme.Errors) > 0 {
		de := &sme.Errors[0]
		line, _ := de.Position()
		return &SpecError{Path: path, Line: line, Err: fmt.Errorf("unknown field %q", strings.Join(de.Key(), "."))}
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, _ := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if m := typeMismatchRE.FindStringSubmatch(msg); m != nil {
			msg = fmt.Sprintf("want a value of type %s, not a TOML %s", m[2], m[1])
		}
		return &SpecError{Path: path, Line: line, Field: strings.Join(de.Key(), "."), Err: errors.New(msg)}
	}
	return &SpecError{Path: path, Err: err}
}

// validateSpec checks what go-toml cannot, returning the offending field.
func validateSpec(s *Spec) (string, error) {
	if !ValidAgentName(s.Name) {
		return "name", fmt.Errorf("%q is not a valid agent name (lowercase letters, digits, '.', '_' and '-', at most 63, starting with a letter or digit)", s.Name)
	}
	if base := filepath.Base(s.Path); strings.HasSuffix(base, ".toml") {
		if want := strings.TrimSuffix(base, ".toml"); s.Name != want {
			return "name", fmt.Errorf("the agent in %s must be named %q, not %q", base, want, s.Name)
		}
	}
	known := false
	for _, b := range Backends {
		known = known || s.Backend == b
	}
	if !known {
		return "backend", fmt.Errorf("%q is not a backend; use one of %s", s.Backend, strings.Join(Backends, ", "))
	}
	sections := []struct {
		name    string
		present bool
	}{{"exec", s.Exec != nil}, {"openai", s.OpenAI != nil}, {"mcp", s.MCP != nil}, {"workflow", s.Workflow != nil}}
	for _, sec := range sections {
		if sec.present && sec.name != s.Backend {
			return sec.name, fmt.Errorf("a %s agent has no [%s] section", s.Backend, sec.name)
		}
	}
	switch s.Sharing.Mode {
	case "", "community", "private":
	default:
		return "sharing.mode", fmt.Errorf("%q is not a sharing mode; use \"community\" or \"private\"", s.Sharing.Mode)
	}
	for i, c := range s.Sharing.Communities {
		if strings.TrimSpace(c) == "" {
			return fmt.Sprintf("sharing.communities[%d]", i), errors.New("a community ID must not be empty")
		}
	}
	if field, err := checkExit(s.Exit); err != nil {
		return field, err
	}
	l := s.Limits
	for _, f := range []struct {
		name string
		neg  bool
	}{
		{"limits.concurrency", l.Concurrency < 0},
		{"limits.max_input", l.MaxInput < 0},
		{"limits.max_output", l.MaxOutput < 0},
		{"limits.rate_per_peer", l.RatePerPeer < 0},
	} {
		if f.neg {
			return f.name, errors.New("must not be negative")
		}
	}
	seen := map[string]bool{}
	for i, sk := range s.Skills {
		field := fmt.Sprintf("skills[%d].id", i)
		if !ValidSkillID(sk.ID) {
			return field, fmt.Errorf("%q is not a valid skill ID (lowercase letters, digits, '.', '_' and '-', at most 128, starting with a letter or digit)", sk.ID)
		}
		if seen[sk.ID] {
			return field, fmt.Errorf("skill %q is declared twice", sk.ID)
		}
		seen[sk.ID] = true
	}
	skills, err := SkillsFromSpec(s)
	if err != nil {
		// SkillsFromSpec names the field first: "skills[1].input_schema: ...".
		field, msg, _ := strings.Cut(err.Error(), ": ")
		return field, errors.New(msg)
	}
	for i, sk := range skills {
		if field, err := checkSkillSchemas(i, sk); err != nil {
			return field, err
		}
	}
	return "", nil
}

// checkSkillSchemas compiles a skill's schemas and checks its examples
// against them.
func checkSkillSchemas(i int, sk Skill) (string, error) {
	in, err := CompileSchema(sk.Input)
	if err != nil {
		return fmt.Sprintf("skills[%d].input_schema", i), err
	}
	out, err := CompileSchema(sk.Output)
	if err != nil {
		return fmt.Sprintf("skills[%d].output_schema", i), err
	}
	for j, ex := range sk.Examples {
		if len(ex.Input) > 0 {
			if err := in.Validate(ex.Input); err != nil {
				return fmt.Sprintf("skills[%d].examples[%d].input", i, j), fmt.Errorf("does not match the input schema: %v", err)
			}
		}
		if len(ex.Output) > 0 {
			if err := out.Validate(ex.Output); err != nil {
				return fmt.Sprintf("skills[%d].examples[%d].output", i, j), fmt.Errorf("does not match the output schema: %v", err)
			}
		}
	}
	return "", nil
}

func applyDefaults(l *Limits) {
	if l.Concurrency == 0 {
		l.Concurrency = DefaultConcurrency
	}
	if l.Timeout.Duration == 0 {
		l.Timeout.Duration = DefaultTimeout
	}
	if l.MaxInput == 0 {
		l.MaxInput = DefaultMaxInput
	}
	if l.MaxOutput == 0 {
		l.MaxOutput = DefaultMaxOutput
	}
	if l.RatePerPeer == 0 {
		l.RatePerPeer = DefaultRatePerPeer
	}
}

// lineIndex maps field paths ("name", "skills[1].input_schema") to the line
// of their key, so errors found after decoding can still point at a line.
type lineIndex map[string]int

// keyLines walks the document with go-toml's parser. Arrays of tables are
// numbered as the decoder numbers them; keys inside inline tables are not
// indexed (their field falls back to the enclosing key's line).
func keyLines(data []byte) lineIndex {
	idx := lineIndex{}
	count := map[string]int{} // array-of-tables path -> entries so far
	var p unstable.Parser
	p.Reset(data)
	lineOf := func(n *unstable.Node) int {
		return bytes.Count(data[:n.Raw.Offset], []byte{'\n'}) + 1
	}
	// resolve turns key parts into a field path, indexing arrays of tables.
	resolve := func(prefix string, it unstable.Iterator, arrayTable bool) (string, int) {
		path, line := prefix, 0
		for it.Next() {
			n := it.Node()
			if line == 0 {
				line = lineOf(n)
			}
			if path != "" {
				path += "."
			}
			path += string(n.Data)
			if it.IsLast() && arrayTable {
				count[path]++
			}
			if c, ok := count[path]; ok {
				path += "[" + strconv.Itoa(c-1) + "]"
			}
		}
		return path, line
	}
	table := ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			path, line := resolve("", e.Key(), e.Kind == unstable.ArrayTable)
			table = path
			if _, ok := idx[path]; !ok {
				idx[path] = line
			}
		case unstable.KeyValue:
			path, line := resolve(table, e.Key(), false)
			idx[path] = line
		}
	}
	return idx
}

// line finds field's line, or its closest enclosing field's; 0 if none.
func (idx lineIndex) line(field string) int {
	for field != "" {
		if l, ok := idx[field]; ok {
			return l
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			break
		}
		field = field[:i]
	}
	return 0
}

// Data-exit values (ExitSpec.Delegate).
const (
	ExitNever     = "never"
	ExitCommunity = "community"
	ExitPeers     = "peers"
)

// ParseExitRule reads one data-exit rule: "never", "community", "peers"
// (with peers from the caller) or "peers:ID,ID".
func ParseExitRule(rule string) (mode string, peers []string, err error) {
	mode, list, hasList := strings.Cut(rule, ":")
	switch {
	case mode == ExitNever || mode == ExitCommunity:
		if hasList {
			return "", nil, fmt.Errorf("%q takes no peer list", mode)
		}
	case mode == ExitPeers:
		if hasList {
			for _, p := range strings.Split(list, ",") {
				if p = strings.TrimSpace(p); p != "" {
					peers = append(peers, p)
				}
			}
			if len(peers) == 0 {
				return "", nil, errors.New("\"peers:\" needs at least one peer ID")
			}
		}
	default:
		return "", nil, fmt.Errorf("%q is not a data-exit rule; use never, community, peers or peers:ID,ID", rule)
	}
	return mode, peers, nil
}

func checkExit(e ExitSpec) (string, error) {
	if e.Delegate != "" {
		mode, _, err := ParseExitRule(e.Delegate)
		if err != nil {
			return "exit.delegate", err
		}
		if mode == ExitPeers && len(e.Peers) == 0 && !strings.Contains(e.Delegate, ":") {
			return "exit.peers", errors.New("delegate = \"peers\" needs the peer IDs in exit.peers")
		}
	}
	if len(e.Peers) > 0 && e.Delegate != ExitPeers {
		return "exit.peers", errors.New("exit.peers is used only with delegate = \"peers\"")
	}
	for skill, rule := range e.Skills {
		if !ValidSkillID(skill) {
			return "exit.skills", fmt.Errorf("%q is not a skill ID", skill)
		}
		mode, peers, err := ParseExitRule(rule)
		if err != nil {
			return "exit.skills." + skill, err
		}
		if mode == ExitPeers && len(peers) == 0 {
			return "exit.skills." + skill, errors.New("per skill, write \"peers:ID,ID\"")
		}
	}
	return "", nil
}
