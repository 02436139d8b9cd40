package community

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/agora-p2p/agora/protocol/canon"
)

func TestPolicyKeys(t *testing.T) {
	keys := PolicyKeys()
	if !slices.IsSortedFunc(keys, func(a, b PolicyKey) int { return strings.Compare(a.Name, b.Name) }) {
		t.Fatal("PolicyKeys is not sorted by name")
	}
	// Every field of Policy has exactly one key, named after its cbor tag.
	var wires []string
	typ := reflect.TypeFor[Policy]()
	for i := range typ.NumField() {
		tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("cbor"), ",")
		wires = append(wires, tag)
	}
	if len(keys) != len(wires) {
		t.Fatalf("%d keys for %d policy fields", len(keys), len(wires))
	}
	for _, k := range keys {
		if !slices.Contains(wires, k.Wire) {
			t.Errorf("key %s: no policy field with cbor key %q", k.Name, k.Wire)
		}
		if want := strings.Replace(k.Wire, "_", ".", 1); k.Name != want {
			t.Errorf("key %s: name should be %s", k.Wire, want)
		}
		if k.Help == "" || !strings.HasSuffix(k.Help, ".") || k.Min > k.Max {
			t.Errorf("key %s: help %q, range %d..%d", k.Name, k.Help, k.Min, k.Max)
		}
	}
	// A copy: callers cannot change the table.
	keys[0].Min = -5
	if PolicyKeys()[0].Min == -5 {
		t.Fatal("PolicyKeys returns the table itself")
	}
}

func TestLookupPolicyKey(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"certify.min_attestations", "certify.min_attestations"},
		{"certify_min_attestations", "certify.min_attestations"},
		{"vote.quorum", "vote.quorum"},
		{"vote_grace_s", "vote.grace_s"},
		{"propose.min_trust", "propose.min_trust"},
		{"vote_member_floor", "vote.member_floor"},
		{"delegate.min_provider_trust", "delegate.min_provider_trust"},
		{"", ""},
		{"vote.Quorum", ""},
		{"vote", ""},
		{"vote_quorum ", ""},
		{"certify.min.attestations", ""},
	}
	for _, tt := range tests {
		k, err := LookupPolicyKey(tt.in)
		if tt.want == "" {
			if !errors.Is(err, ErrUnknownPolicyKey) {
				t.Errorf("LookupPolicyKey(%q) = %+v, %v; want ErrUnknownPolicyKey", tt.in, k, err)
			} else if !strings.Contains(err.Error(), "vote.threshold") || !strings.Contains(err.Error(), "propose.min_trust") {
				t.Errorf("the error should list the keys: %v", err)
			}
			continue
		}
		if err != nil || k.Name != tt.want {
			t.Errorf("LookupPolicyKey(%q) = %+v, %v; want %s", tt.in, k, err, tt.want)
		}
	}
}

func TestPolicyGetWith(t *testing.T) {
	p := DefaultPolicy()
	p.ProposeMinTrust, p.VoteMemberFloor, p.DelegateMinProviderTrust = 10, 20, 30
	gets := map[string]int64{
		"certify.min_attestations":    2,
		"certify_min_auditor_trust":   100,
		"delegate.min_trust":          0,
		"delegate.min_provider_trust": 30,
		"propose.min_trust":           10,
		"vote.duration_s":             7 * 24 * 3600,
		"vote.grace_s":                120,
		"vote.member_floor":           20,
		"vote_quorum":                 200,
		"vote.threshold":              500,
	}
	for name, want := range gets {
		if got, err := p.Get(name); err != nil || got != want {
			t.Errorf("Get(%s) = %d, %v; want %d", name, got, err, want)
		}
	}
	if _, err := p.Get("vote.weight"); !errors.Is(err, ErrUnknownPolicyKey) {
		t.Errorf("Get of an unknown key: %v", err)
	}

	tests := []struct {
		name  string
		value int64
		want  error
	}{
		{"certify.min_attestations", 1, nil},
		{"certify.min_attestations", 0, ErrInvalidPolicy},
		{"certify.min_attestations", 1000, nil},
		{"certify.min_attestations", 1001, ErrInvalidPolicy},
		{"vote.threshold", 0, ErrInvalidPolicy},
		{"vote_threshold", 1000, nil},
		{"vote.duration_s", 4, ErrInvalidPolicy},
		{"vote.duration_s", 365 * 24 * 3600, nil},
		{"vote.grace_s", 86401, ErrInvalidPolicy},
		{"propose.min_trust", 0, nil},
		{"propose.min_trust", 1000, nil},
		{"propose.min_trust", 1001, ErrInvalidPolicy},
		{"vote.member_floor", -1, ErrInvalidPolicy},
		{"vote.member_floor", 500, nil},
		{"delegate.min_provider_trust", 1000, nil},
		{"delegate_min_provider_trust", 2000, ErrInvalidPolicy},
		{"vote.weight", 1, ErrUnknownPolicyKey},
	}
	for _, tt := range tests {
		before := p
		q, err := p.With(tt.name, tt.value)
		if p != before {
			t.Fatalf("With(%s) changed the receiver", tt.name)
		}
		if tt.want != nil {
			if !errors.Is(err, tt.want) {
				t.Errorf("With(%s, %d) = %v, want %v", tt.name, tt.value, err, tt.want)
			}
			if errors.Is(err, ErrInvalidPolicy) {
				k, _ := LookupPolicyKey(tt.name)
				if !strings.Contains(err.Error(), k.Name) || !strings.Contains(err.Error(), "between") {
					t.Errorf("the error should name the key and its range: %v", err)
				}
			}
			continue
		}
		if err != nil {
			t.Errorf("With(%s, %d): %v", tt.name, tt.value, err)
			continue
		}
		if got, _ := q.Get(tt.name); got != tt.value {
			t.Errorf("With(%s, %d) then Get = %d", tt.name, tt.value, got)
		}
		if err := q.Validate(); err != nil {
			t.Errorf("With(%s, %d) gave an invalid policy: %v", tt.name, tt.value, err)
		}
		// Only that key changed.
		for _, k := range PolicyKeys() {
			a, _ := p.Get(k.Name)
			b, _ := q.Get(k.Name)
			if k2, _ := LookupPolicyKey(tt.name); k.Name != k2.Name && a != b {
				t.Errorf("With(%s) changed %s", tt.name, k.Name)
			}
		}
	}
}

func TestPolicyNewKeysValidate(t *testing.T) {
	for _, f := range []func(*Policy){
		func(p *Policy) { p.ProposeMinTrust = -1 },
		func(p *Policy) { p.ProposeMinTrust = 1001 },
		func(p *Policy) { p.VoteMemberFloor = 1001 },
		func(p *Policy) { p.DelegateMinProviderTrust = -1 },
	} {
		p := DefaultPolicy()
		f(&p)
		if err := p.Validate(); !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidPolicy", p, err)
		}
	}
}

// TestPolicyOldEncoding checks that the keys added later leave a policy
// written before them byte-identical, and so every genesis ID unchanged.
func TestPolicyOldEncoding(t *testing.T) {
	old := map[string]int64{
		"certify_min_attestations":  2,
		"certify_min_auditor_trust": 100,
		"delegate_min_trust":        0,
		"vote_quorum":               200,
		"vote_threshold":            500,
		"vote_duration_s":           604800,
		"vote_grace_s":              120,
	}
	raw, err := canon.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	var p Policy
	if err := canon.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	if p != DefaultPolicy() {
		t.Fatalf("old policy decodes as %+v", p)
	}
	if re, _ := canon.Marshal(p); !bytes.Equal(re, raw) {
		t.Fatalf("old policy re-encodes differently:\n in %x\nout %x", raw, re)
	}

	p.ProposeMinTrust, p.VoteMemberFloor, p.DelegateMinProviderTrust = 1, 2, 3
	raw, err = canon.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]int64
	if err := canon.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if len(m) != 10 || m["propose_min_trust"] != 1 || m["vote_member_floor"] != 2 || m["delegate_min_provider_trust"] != 3 {
		t.Fatalf("new keys on the wire: %v", m)
	}
	var back Policy
	if err := canon.Unmarshal(raw, &back); err != nil || back != p {
		t.Fatalf("round trip = %+v, %v; want %+v", back, err, p)
	}
}
