package workflow

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: no input makes Parse or Plan panic, and what Parse accepts
// is well formed.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(minimal))
	f.Add([]byte(`{"name":"wf","steps":[{"id":"a","skill":"s","input":"{x: $steps.b}"},{"id":"b","skill":"s","input":"{}","when":"$steps.a"}],"output":"$steps.a"}`))
	f.Add([]byte("name: wf\nx: &a [*a]\n"))
	f.Add([]byte("name: wf\ninput_schema: {$ref: 'http://x/y'}\nsteps: [{id: a, skill: s, input: '{}', timeout: 1h}]\noutput: .\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fl, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		if fl.Name == "" || fl.Output == "" || len(fl.Steps) == 0 || len(fl.InputSchema) == 0 {
			t.Fatalf("accepted an incomplete workflow: %+v", fl)
		}
		g, err := Plan(fl, nil)
		if err != nil {
			return
		}
		if len(g.Order()) != len(fl.Steps) {
			t.Fatalf("order %v for %d steps", g.Order(), len(fl.Steps))
		}
		pos := map[string]int{}
		for i, id := range g.Order() {
			pos[id] = i
		}
		for _, s := range fl.Steps {
			for _, d := range g.Dependencies(s.ID) {
				if pos[d] >= pos[s.ID] {
					t.Fatalf("%s runs before its dependency %s", s.ID, d)
				}
			}
		}
	})
}
