package agents

import (
	"strings"
	"testing"
)

func TestSchemaValidate(t *testing.T) {
	s, err := CompileSchema([]byte(`{
		"type": "object",
		"properties": {
			"text": {"type": "string", "maxLength": 5},
			"n": {"type": "integer"},
			"tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}}
		},
		"required": ["text"],
		"additionalProperties": false,
		"$defs": {"tag": {"type": "string", "pattern": "^[a-z]+$"}}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		doc, want string // want "" = valid
	}{
		{`{"text":"hi"}`, ""},
		{`{"text":"hi","n":12345678901234567890123}`, ""}, // big integers stay exact
		{`{"text":"hi","n":1.0}`, ""},
		{`{"text":"hi","tags":["a","b"]}`, ""},
		{`{}`, "at '': missing property 'text'"},
		{`{"text":1}`, "at '/text': got number, want string"},
		{`{"text":"toolong"}`, "at '/text': maxLength"},
		{`{"text":"hi","n":1.5}`, "at '/n': got number, want integer"},
		{`{"text":"hi","x":1}`, "at '': additional properties 'x' not allowed"},
		{`{"text":"hi","tags":["a","B"]}`, "at '/tags/1': "},
		{`[]`, "at '': got array, want object"},
		{`{"text":"hi"} {}`, "invalid JSON"},
		{`{"text":`, "invalid JSON"},
		{``, "invalid JSON"},
	}
	for _, tt := range tests {
		err := s.Validate([]byte(tt.doc))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.doc, err)
		case tt.want != "" && err == nil:
			t.Errorf("%s: valid, want %q", tt.doc, tt.want)
		case tt.want != "" && !strings.HasPrefix(err.Error(), tt.want):
			t.Errorf("%s: %q, want prefix %q", tt.doc, err, tt.want)
		case err != nil && strings.Contains(err.Error(), "\n"):
			t.Errorf("%s: multi-line error %q", tt.doc, err)
		}
	}
}

func TestCompileSchemaErrors(t *testing.T) {
	for _, tt := range []struct{ schema, want string }{
		{`{"type":`, "invalid JSON"},
		{`{"type":"objekt"}`, "invalid schema: at '/type'"},
		{`{"minLength":-1}`, "invalid schema: at '/minLength'"},
		{`{"$ref":"https://example.com/schema.json"}`, "invalid schema: "},
		{`{"$ref":"file:///etc/passwd"}`, "invalid schema: "},
		{`{"$ref":"../../etc/passwd"}`, "invalid schema: "},
		{`{"$ref":"#/$defs/missing"}`, "invalid schema: "},
		{`{"pattern":"("}`, "invalid schema: "},
	} {
		_, err := CompileSchema([]byte(tt.schema))
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want prefix %q", tt.schema, err, tt.want)
		}
	}
	// A schema naming the standard meta-schema needs no network.
	if _, err := CompileSchema([]byte(`{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"string"}`)); err != nil {
		t.Error(err)
	}
	if _, err := CompileSchema([]byte(`true`)); err != nil {
		t.Error(err)
	}
}
