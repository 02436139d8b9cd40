package llm

import (
	"slices"
	"strconv"
)

// maxToolName is OpenAI's limit on a function name, ^[a-zA-Z0-9_-]{1,64}$.
const maxToolName = 64

// toolNames gives each skill ID a distinct function name. Skill IDs may hold
// dots and run to 128 characters; function names may not. An ID that is
// already a valid name keeps it; the others, in sorted order, get the ID
// with every other character replaced by '_', cut to 64, and "_2", "_3", ...
// on a collision. The result depends only on the set of IDs, so a recorded
// conversation replays the same names. Empty IDs get no name.
func toolNames(ids []string) (byName map[string]string) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	byName = make(map[string]string, len(ids))
	for _, id := range ids {
		if validToolName(id) {
			byName[id] = id
		}
	}
	for _, id := range ids {
		if id == "" || validToolName(id) {
			continue
		}
		base := sanitizeToolName(id)
		name := base
		for n := 2; byName[name] != ""; n++ {
			suffix := "_" + strconv.Itoa(n)
			name = base[:min(len(base), maxToolName-len(suffix))] + suffix
		}
		byName[name] = id
	}
	return byName
}

// validToolName reports whether s matches ^[a-zA-Z0-9_-]{1,64}$.
func validToolName(s string) bool {
	if s == "" || len(s) > maxToolName {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !toolNameByte(s[i]) {
			return false
		}
	}
	return true
}

func toolNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// sanitizeToolName replaces each byte a name may not hold with '_' and cuts
// the result to maxToolName bytes (all ASCII, so no rune is split).
func sanitizeToolName(id string) string {
	b := []byte(id[:min(len(id), maxToolName)])
	for i, c := range b {
		if !toolNameByte(c) {
			b[i] = '_'
		}
	}
	return string(b)
}
