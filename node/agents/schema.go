package agents

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemaURL names the one in-memory resource a schema is compiled from. Any
// other URL a schema refers to fails to load: skill schemas come from files,
// the API and remote adverts, and must never make the node fetch anything.
const schemaURL = "mem:///skill-schema.json"

// Schema is a compiled JSON Schema (draft 2020-12 unless it says otherwise
// with $schema). It is safe for concurrent use.
type Schema struct {
	raw json.RawMessage
	sch *jsonschema.Schema
}

// noLoader refuses every URL: the default loader would read local files.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("schemas may only refer to themselves, not to %s", url)
}

// CompileSchema compiles raw, a JSON Schema. $ref may point inside the
// schema and to the standard meta-schemas, never to files or the network.
func CompileSchema(raw json.RawMessage) (*Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noLoader{})
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("invalid schema: %v", err)
	}
	sch, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("invalid schema: %s", schemaErrorText(err))
	}
	return &Schema{raw: append(json.RawMessage(nil), raw...), sch: sch}, nil
}

// Raw returns the schema's JSON text.
func (s *Schema) Raw() json.RawMessage { return s.raw }

// Validate checks doc against the schema. The error says where doc failed
// and why, from the first cause the validator found, e.g.
// `at '/text': got number, want string`.
func (s *Schema) Validate(doc json.RawMessage) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("invalid JSON: %v", err)
	}
	if err := s.sch.Validate(v); err != nil {
		return errors.New(schemaErrorText(err))
	}
	return nil
}

// schemaErrorText makes the validator's error one short line: its first
// leaf cause. The library's full text is a tree, one line per cause.
func schemaErrorText(err error) string {
	var sve *jsonschema.SchemaValidationError
	if errors.As(err, &sve) {
		err = sve.Err
	}
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		for len(ve.Causes) > 0 {
			ve = ve.Causes[0]
		}
		return firstLine(ve.Error())
	}
	return firstLine(err.Error())
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
