package body

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// textRule says how a text field is measured and which characters it may
// hold. "Printable" is unicode.IsPrint: letters, marks, numbers,
// punctuation, symbols and U+0020; control and format characters (such as
// bidi overrides) never are, so text cannot smuggle terminal escapes or
// reordering tricks into a UI.
type textRule struct {
	min, max  int
	bytes     bool // max counts bytes, not characters
	multiline bool // newline and tab allowed too
	noSpace   bool // U+0020 not allowed either
	trimmed   bool // no leading or trailing U+0020
}

func checkText(field, s string, r textRule) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: the %s is not valid UTF-8 text", ErrInvalid, field)
	}
	n, unit := utf8.RuneCountInString(s), "characters"
	if r.bytes {
		n, unit = len(s), "bytes"
	}
	if n < r.min || n > r.max {
		if r.min == 0 {
			return fmt.Errorf("%w: the %s must be at most %d %s long, not %d", ErrInvalid, field, r.max, unit, n)
		}
		return fmt.Errorf("%w: the %s must be %d to %d %s long, not %d", ErrInvalid, field, r.min, r.max, unit, n)
	}
	for _, c := range s {
		switch {
		case r.multiline && (c == '\n' || c == '\t'):
		case c == ' ' && r.noSpace:
			return fmt.Errorf("%w: the %s must not contain spaces", ErrInvalid, field)
		case !unicode.IsPrint(c):
			return fmt.Errorf("%w: the %s contains the non-printable character %U", ErrInvalid, field, c)
		}
	}
	if r.trimmed && len(s) > 0 && (s[0] == ' ' || s[len(s)-1] == ' ') {
		return fmt.Errorf("%w: the %s must not start or end with a space", ErrInvalid, field)
	}
	return nil
}

// clip keeps hostile strings from bloating error messages and logs.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
