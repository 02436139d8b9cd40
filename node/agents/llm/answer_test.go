package llm

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestParseAnswer(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"object", `{"a": 1}`, `{"a":1}`},
		{"spaces", "\n  {\"a\": [1, 2]}  \n", `{"a":[1,2]}`},
		{"array", `[1, 2]`, `[1,2]`},
		{"json fence", "```json\n{\"a\": 1}\n```", `{"a":1}`},
		{"bare fence", "```\n{\"a\": 1}\n```", `{"a":1}`},
		{"prose and fence", "Sure! Here it is:\n```json\n{\"a\": 1}\n```\nAnything else?", `{"a":1}`},
		{"unterminated fence", "```json\n{\"a\": 1}\n", `{"a":1}`},
		{"prose around object", `The answer is {"a": "b"} as requested.`, `{"a":"b"}`},
		{"think block", "<think>\nThe user wants {x}.\n</think>\n{\"a\": 1}", `{"a":1}`},
		{"nested braces", `{"a": {"b": "}"}}`, `{"a":{"b":"}"}}`},
		{"prose", "I cannot do that.", ""},
		{"empty", "", ""},
		{"broken", `{"a": `, ""},
		{"two objects", `{"a":1} {"b":2}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseAnswer(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("parseAnswer(%q) = %s, want an error", tc.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseAnswer(%q): %v", tc.in, err)
			}
			if string(got) != tc.want {
				t.Errorf("parseAnswer(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzParseAnswer(f *testing.F) {
	for _, s := range []string{
		`{"a":1}`, "```json\n{}\n```", "text {\"a\": 2} text", "<think>{</think>[]",
		"```", "```\n", "{", "}{", "<think>", "\xff{\"a\":1}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := parseAnswer(s)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("parseAnswer(%q) = %q, not JSON", s, out)
		}
		if again, err := parseAnswer(string(out)); err != nil || string(again) != string(out) {
			t.Fatalf("parseAnswer is not idempotent on %q: %q, %v", out, again, err)
		}
		if r := snippet(s, 200); !utf8.ValidString(r) {
			t.Fatalf("snippet(%q) is not UTF-8", s)
		}
	})
}
