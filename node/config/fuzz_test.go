package config

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzParse checks config.toml parsing: no input panics, and whatever
// parses is valid and survives Marshal and Parse unchanged.
func FuzzParse(f *testing.F) {
	def := Default()
	seed, err := def.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte("[api]\nlisten = \"127.0.0.1:0\"\n"))
	f.Add([]byte("[p2p]\nlisten = []\nbootstrap = [\"/ip4/1.2.3.4/tcp/1\"]\n"))
	f.Add([]byte("[log]\nlevel = \"loud\"\n"))
	f.Add([]byte("nope = 1\n"))
	f.Add([]byte("[[p2p]]\n"))
	f.Add([]byte("[p2p]\nlisten = [\"/dns4/a,b/tcp/1\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted an invalid config: %v", err)
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed config: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse of Marshal's output: %v\n%s", err, out)
		}
		out2, err := again.Marshal()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("Marshal, Parse, Marshal changed the config:\n%s\n---\n%s", out, out2)
		}
		// Every value can be written back through `agora config set`
		// as `agora config get` shows it.
		for _, k := range Keys() {
			v, err := c.Get(k.Name)
			if err != nil {
				t.Fatalf("Get(%q): %v", k.Name, err)
			}
			d := c
			if err := d.Set(k.Name, v); err != nil {
				t.Fatalf("Set(%q, Get's %q): %v", k.Name, v, err)
			}
			if out3, err := d.Marshal(); err != nil || !bytes.Equal(out, out3) {
				t.Fatalf("Set(%q, Get's %q) changed the config:\n%s\n---\n%s", k.Name, v, out, out3)
			}
		}
	})
}

// FuzzSet checks `agora config set KEY VALUE`: no input panics, a refused
// value changes nothing, and an accepted one leaves a valid config.
func FuzzSet(f *testing.F) {
	for _, k := range Keys() {
		def := Default()
		v, err := def.Get(k.Name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(k.Name, v)
		f.Add(k.Name, "-1")
		f.Add(k.Name, "a, b,,c")
	}
	f.Add("no.such.key", "1")
	f.Fuzz(func(t *testing.T, name, value string) {
		c := Default()
		before := Default()
		if err := c.Set(name, value); err != nil {
			if !reflect.DeepEqual(c, before) {
				t.Fatalf("Set(%q, %q) failed (%v) and changed the config", name, value, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Set(%q, %q) left an invalid config: %v", name, value, err)
		}
		if _, err := c.Get(name); err != nil {
			t.Fatalf("Get(%q) after Set: %v", name, err)
		}
	})
}
