package body

import (
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/agora-p2p/agora/protocol/canon"
	"github.com/agora-p2p/agora/protocol/record"
	ma "github.com/multiformats/go-multiaddr"
)

// Advert limits.
const (
	MaxAdvertAgents      = 32
	MaxAdvertSkills      = 128 // over all agents
	MaxAdvertAddrs       = 16
	MaxAdvertTags        = 16
	MaxAdvertTagLen      = 32
	MaxAdvertDescription = 1024
	MaxAdvertSchemaBytes = 16 << 10
	// MaxAdvertLifetime bounds Expires - created: a node republishes its
	// advert well before it expires, so a vanished node drops out soon.
	MaxAdvertLifetime = 60 * 60 * 1000
	// MaxLoad is full load, in thousandths.
	MaxLoad = 1000
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)

// Advert is the body of an advert record: what a node offers one community.
// It is ephemeral: sent on the community's adverts topic, never stored in
// the registry. The newest Seq per author replaces older adverts, and an
// advert past Expires drops out.
type Advert struct {
	Seq     uint64
	Expires int64  // unix ms
	Load    uint64 // 0..MaxLoad: running tasks ÷ capacity, in thousandths
	Addrs   []string
	Agents  []AdvertAgent
}

// AdvertAgent is one shared agent in an advert.
type AdvertAgent struct {
	Name        string
	Description string
	Version     string
	Skills      []AdvertSkill
}

// AdvertSkill is one skill of an advertised agent. Input and Output are
// JSON Schemas, as JSON text.
type AdvertSkill struct {
	ID          string
	Description string
	Tags        []string
	Input       []byte
	Output      []byte
}

type advertSkillWire struct {
	ID          string   `cbor:"id"`
	Tags        []string `cbor:"tags,omitempty"`
	Input       []byte   `cbor:"input"`
	Output      []byte   `cbor:"output"`
	Description string   `cbor:"description,omitempty"`
}

type advertAgentWire struct {
	Name        string            `cbor:"name"`
	Skills      []advertSkillWire `cbor:"skills"`
	Version     string            `cbor:"version,omitempty"`
	Description string            `cbor:"description,omitempty"`
}

type advertWire struct {
	Seq     uint64            `cbor:"seq"`
	Load    uint64            `cbor:"load,omitempty"`
	Addrs   []string          `cbor:"addrs,omitempty"`
	Agents  []advertAgentWire `cbor:"agents"`
	Expires int64             `cbor:"expires"`
}

func (a Advert) toWire() advertWire {
	w := advertWire{Seq: a.Seq, Load: a.Load, Addrs: a.Addrs, Expires: a.Expires, Agents: []advertAgentWire{}}
	for _, ag := range a.Agents {
		aw := advertAgentWire{Name: ag.Name, Version: ag.Version, Description: ag.Description, Skills: []advertSkillWire{}}
		for _, s := range ag.Skills {
			aw.Skills = append(aw.Skills, advertSkillWire{ID: s.ID, Tags: s.Tags, Input: s.Input, Output: s.Output, Description: s.Description})
		}
		w.Agents = append(w.Agents, aw)
	}
	return w
}

func (w advertWire) fromWire() Advert {
	a := Advert{Seq: w.Seq, Load: w.Load, Addrs: w.Addrs, Expires: w.Expires}
	for _, aw := range w.Agents {
		ag := AdvertAgent{Name: aw.Name, Version: aw.Version, Description: aw.Description}
		for _, s := range aw.Skills {
			ag.Skills = append(ag.Skills, AdvertSkill{ID: s.ID, Tags: s.Tags, Input: s.Input, Output: s.Output, Description: s.Description})
		}
		a.Agents = append(a.Agents, ag)
	}
	return a
}

// Kind implements Body.
func (Advert) Kind() record.Kind { return record.KindAdvert }

// Validate implements Body.
func (a Advert) Validate(created int64) error {
	if a.Seq == 0 {
		return fmt.Errorf("%w: an advert's seq starts at 1", ErrInvalid)
	}
	if a.Expires <= 0 {
		return fmt.Errorf("%w: the advert has no expiry", ErrInvalid)
	}
	if created > 0 && (a.Expires <= created || a.Expires-created > MaxAdvertLifetime) {
		return fmt.Errorf("%w: the advert must expire within %d ms of its creation, not %d", ErrInvalid, MaxAdvertLifetime, a.Expires-created)
	}
	if a.Load > MaxLoad {
		return fmt.Errorf("%w: load %d is over %d", ErrInvalid, a.Load, MaxLoad)
	}
	if len(a.Addrs) > MaxAdvertAddrs {
		return fmt.Errorf("%w: an advert may list at most %d addresses, not %d", ErrInvalid, MaxAdvertAddrs, len(a.Addrs))
	}
	for _, s := range a.Addrs {
		if _, err := ma.NewMultiaddr(s); err != nil {
			return fmt.Errorf("%w: address %q: %v", ErrInvalid, clip(s), err)
		}
	}
	if len(a.Agents) > MaxAdvertAgents {
		return fmt.Errorf("%w: an advert may list at most %d agents, not %d", ErrInvalid, MaxAdvertAgents, len(a.Agents))
	}
	agents := map[string]bool{}
	skills := map[string]bool{}
	n := 0
	for _, ag := range a.Agents {
		if !nameRE.MatchString(ag.Name) {
			return fmt.Errorf("%w: agent name %q", ErrInvalid, clip(ag.Name))
		}
		if agents[ag.Name] {
			return fmt.Errorf("%w: agent %q listed twice", ErrInvalid, ag.Name)
		}
		agents[ag.Name] = true
		if err := checkText("agent description", ag.Description, textRule{max: MaxAdvertDescription, multiline: true}); err != nil {
			return err
		}
		if err := checkText("agent version", ag.Version, textRule{max: 64, noSpace: true}); err != nil {
			return err
		}
		for _, s := range ag.Skills {
			n++
			if n > MaxAdvertSkills {
				return fmt.Errorf("%w: an advert may list at most %d skills", ErrInvalid, MaxAdvertSkills)
			}
			if !nameRE.MatchString(s.ID) {
				return fmt.Errorf("%w: skill ID %q", ErrInvalid, clip(s.ID))
			}
			if skills[ag.Name+"\x00"+s.ID] {
				return fmt.Errorf("%w: skill %q listed twice for agent %q", ErrInvalid, s.ID, ag.Name)
			}
			skills[ag.Name+"\x00"+s.ID] = true
			if err := checkText("skill description", s.Description, textRule{max: MaxAdvertDescription, multiline: true}); err != nil {
				return err
			}
			if len(s.Tags) > MaxAdvertTags {
				return fmt.Errorf("%w: skill %q has more than %d tags", ErrInvalid, s.ID, MaxAdvertTags)
			}
			for _, t := range s.Tags {
				if err := checkText("tag", t, textRule{min: 1, max: MaxAdvertTagLen, noSpace: true}); err != nil {
					return err
				}
			}
			for field, schema := range map[string][]byte{"input": s.Input, "output": s.Output} {
				if len(schema) == 0 || len(schema) > MaxAdvertSchemaBytes || !json.Valid(schema) {
					return fmt.Errorf("%w: the %s schema of skill %q is not JSON of 1 to %d bytes", ErrInvalid, field, s.ID, MaxAdvertSchemaBytes)
				}
			}
		}
	}
	return nil
}

// MarshalCBOR encodes the advert in its canonical wire form. It does not
// validate.
func (a Advert) MarshalCBOR() ([]byte, error) {
	return canon.Marshal(a.toWire())
}

// DecodeAdvert reads an advert body and checks it on its own.
func DecodeAdvert(raw []byte) (Advert, error) {
	return decodeAdvert(raw, 0)
}

func decodeAdvert(raw []byte, created int64) (Advert, error) {
	var w advertWire
	if err := decodeWire(record.KindAdvert, raw, &w); err != nil {
		return Advert{}, err
	}
	a := w.fromWire()
	if err := a.Validate(created); err != nil {
		return Advert{}, err
	}
	if err := checkReencodes(record.KindAdvert, raw, a.toWire()); err != nil {
		return Advert{}, err
	}
	return a, nil
}
