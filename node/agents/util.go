package agents

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

var errNegativeDuration = errors.New("duration must not be negative")

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// defaultSchema is the schema of a skill that declares none: any object.
var defaultSchema = []byte(`{"type":"object"}`)

// SkillsFromSpec turns the [[skills]] of an agent file into Skills: schema
// and example texts must be JSON (a missing schema means any object). It
// does not compile the schemas; the Manager does. Errors name the field,
// e.g. `skills[1].input_schema: invalid JSON: ...`.
func SkillsFromSpec(spec *Spec) ([]Skill, error) {
	out := make([]Skill, 0, len(spec.Skills))
	for i, ss := range spec.Skills {
		field := func(f string) string { return fmt.Sprintf("skills[%d].%s", i, f) }
		if ss.ID == "" {
			return nil, fmt.Errorf("%s: a skill needs an id", field("id"))
		}
		sk := Skill{ID: ss.ID, Description: ss.Description, Tags: ss.Tags}
		var err error
		if sk.Input, err = jsonField(field("input_schema"), ss.InputSchema, defaultSchema); err != nil {
			return nil, err
		}
		if sk.Output, err = jsonField(field("output_schema"), ss.OutputSchema, defaultSchema); err != nil {
			return nil, err
		}
		for j, ex := range ss.Examples {
			in, err := jsonField(fmt.Sprintf("skills[%d].examples[%d].input", i, j), ex.Input, nil)
			if err != nil {
				return nil, err
			}
			outp, err := jsonField(fmt.Sprintf("skills[%d].examples[%d].output", i, j), ex.Output, nil)
			if err != nil {
				return nil, err
			}
			sk.Examples = append(sk.Examples, Example{Input: in, Output: outp})
		}
		out = append(out, sk)
	}
	return out, nil
}

func jsonField(field, text string, def []byte) (json.RawMessage, error) {
	if strings.TrimSpace(text) == "" {
		return def, nil
	}
	if !json.Valid([]byte(text)) {
		var v any
		err := json.Unmarshal([]byte(text), &v)
		return nil, fmt.Errorf("%s: invalid JSON: %v", field, err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(text)); err != nil {
		return nil, fmt.Errorf("%s: invalid JSON: %v", field, err)
	}
	return buf.Bytes(), nil
}
