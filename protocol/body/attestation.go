package body

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/agora-p2p/agora/protocol/canon"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// Attestation limits. Text lengths are in characters (Unicode code points)
// unless the name says Bytes.
const (
	MaxPredicateLen     = 256
	MaxClaims           = 32
	MaxClaimKeyLen      = 64
	MaxClaimValueLen    = 1024
	MaxEvidenceBytes    = 4 << 10
	MaxSubjectNameLen   = 128 // agent and skill IDs
	MaxSubjectIDBytes   = 256 // any subject ID, checked before parsing it
	MaxSubjectDigestLen = 128 // bytes of the digest multihash
)

// SubjectType says what an attestation is about. The list is append-only; a
// value this node does not know is ErrUnknownField, not the sender's fault.
type SubjectType string

const (
	SubjectPeer    SubjectType = "peer"    // a node; ID is its peer ID (12D3Koo...)
	SubjectAgent   SubjectType = "agent"   // an agent; ID is free text, by convention "<peer ID>/<agent name>"
	SubjectSkill   SubjectType = "skill"   // a skill; ID is its skill ID, e.g. "text.summarize"
	SubjectCode    SubjectType = "code"    // code or a model; ID is a CID of its content
	SubjectReceipt SubjectType = "receipt" // a task receipt; ID is its CID
	SubjectRecord  SubjectType = "record"  // an Agora record; ID is its record ID (bafyrei...)
)

// Verdict is an attestation's conclusion. The list is append-only.
type Verdict string

const (
	VerdictPass Verdict = "pass"
	VerdictFail Verdict = "fail"
	VerdictWarn Verdict = "warn"
)

// Subject names what an attestation is about.
type Subject struct {
	Type SubjectType
	// ID is in the one canonical text form of its type, so that every
	// attestation about the same thing names it the same way: a peer ID in
	// base58 (12D3Koo...), a CID as cid.Cid.String() prints it.
	ID string
	// Digest optionally pins the exact content attested (a multihash), for
	// subjects whose ID does not, such as an agent or a skill.
	Digest []byte
}

// String returns "type:id", the subject's key in indexes and queries.
func (s Subject) String() string {
	return string(s.Type) + ":" + s.ID
}

// Validate checks the subject's type and the form of its ID and digest.
func (s Subject) Validate() error {
	if s.Type == "" {
		return fmt.Errorf("%w: the attestation has no subject type", ErrInvalid)
	}
	if len(s.ID) == 0 || len(s.ID) > MaxSubjectIDBytes {
		return fmt.Errorf("%w: the subject ID must be 1 to %d bytes long, not %d", ErrInvalid, MaxSubjectIDBytes, len(s.ID))
	}
	switch s.Type {
	case SubjectPeer:
		id, err := peer.Decode(s.ID)
		if err != nil {
			return fmt.Errorf("%w: the subject %q is not a peer ID: %w", ErrInvalid, clip(s.ID), err)
		}
		// peer.Decode reads base58 (the canonical form, one string per ID)
		// for these prefixes and a CID otherwise.
		if !strings.HasPrefix(s.ID, "Qm") && !strings.HasPrefix(s.ID, "1") {
			return fmt.Errorf("%w: write the subject peer ID as %s", ErrInvalid, id)
		}
	case SubjectCode, SubjectReceipt, SubjectRecord:
		c, err := cid.Decode(s.ID)
		if err != nil {
			return fmt.Errorf("%w: the %s subject %q is not a CID: %w", ErrInvalid, s.Type, clip(s.ID), err)
		}
		if c.String() != s.ID {
			return fmt.Errorf("%w: write the %s subject CID as %s", ErrInvalid, s.Type, c)
		}
		if s.Type == SubjectRecord && !isRecordID(c) {
			return fmt.Errorf("%w: the record subject %s is not a record ID (CIDv1 dag-cbor sha2-256)", ErrInvalid, clip(s.ID))
		}
	case SubjectAgent, SubjectSkill:
		if err := checkText("subject "+string(s.Type)+" ID", s.ID, textRule{min: 1, max: MaxSubjectNameLen, trimmed: true}); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: subject type %q", ErrUnknownField, clip(string(s.Type)))
	}
	if len(s.Digest) > 0 {
		if len(s.Digest) > MaxSubjectDigestLen {
			return fmt.Errorf("%w: the subject digest must be at most %d bytes, not %d", ErrInvalid, MaxSubjectDigestLen, len(s.Digest))
		}
		if _, err := mh.Cast(s.Digest); err != nil {
			return fmt.Errorf("%w: the subject digest is not a multihash: %w", ErrInvalid, err)
		}
	}
	return nil
}

// Attestation is the body of an attestation record: a statement by its
// author (an auditor) that a subject meets, or fails, a predicate, in the
// spirit of an in-toto statement or an EAS attestation. Its author may
// withdraw it with a Revocation.
type Attestation struct {
	Subject Subject
	// Predicate names what was checked, as a URI: the type of the audit and
	// its version, e.g. "agora:audit/deterministic/v1" or
	// "https://agora.example/audit/v1". Consumers match it exactly.
	Predicate string
	Verdict   Verdict
	// Claims are the audit's findings as short key/value pairs.
	Claims map[string]string
	// Evidence is free text: a log excerpt, a URL, the CIDs of receipts.
	Evidence string
	// Expires is when the attestation stops counting, in unix ms; 0 never.
	Expires int64
}

type subjectWire struct {
	ID     string `cbor:"id"`
	Type   string `cbor:"type"`
	Digest []byte `cbor:"digest,omitempty"`
}

type attestationWire struct {
	Claims    map[string]string `cbor:"claims,omitempty"`
	Expires   int64             `cbor:"expires,omitempty"`
	Subject   subjectWire       `cbor:"subject"`
	Verdict   string            `cbor:"verdict"`
	Evidence  string            `cbor:"evidence,omitempty"`
	Predicate string            `cbor:"predicate"`
}

func (a Attestation) toWire() attestationWire {
	return attestationWire{
		Claims:    a.Claims,
		Expires:   a.Expires,
		Subject:   subjectWire{ID: a.Subject.ID, Type: string(a.Subject.Type), Digest: a.Subject.Digest},
		Verdict:   string(a.Verdict),
		Evidence:  a.Evidence,
		Predicate: a.Predicate,
	}
}

func (w attestationWire) fromWire() Attestation {
	return Attestation{
		Subject:   Subject{Type: SubjectType(w.Subject.Type), ID: w.Subject.ID, Digest: w.Subject.Digest},
		Predicate: w.Predicate,
		Verdict:   Verdict(w.Verdict),
		Claims:    w.Claims,
		Evidence:  w.Evidence,
		Expires:   w.Expires,
	}
}

// Kind implements Body.
func (Attestation) Kind() record.Kind { return record.KindAttestation }

// Validate implements Body. An attestation that has expired by now is still
// valid: it records what was said, and consumers ignore it after Expires.
func (a Attestation) Validate(created int64) error {
	if err := a.Subject.Validate(); err != nil {
		return err
	}
	if err := checkPredicate(a.Predicate); err != nil {
		return err
	}
	switch a.Verdict {
	case VerdictPass, VerdictFail, VerdictWarn:
	case "":
		return fmt.Errorf("%w: the attestation has no verdict; use pass, fail or warn", ErrInvalid)
	default:
		return fmt.Errorf("%w: verdict %q", ErrUnknownField, clip(string(a.Verdict)))
	}
	if len(a.Claims) > MaxClaims {
		return fmt.Errorf("%w: an attestation may have at most %d claims, not %d", ErrInvalid, MaxClaims, len(a.Claims))
	}
	for k, v := range a.Claims {
		if checkClaim(k, v) != nil {
			// Report the first bad claim in key order: the same error on
			// every node.
			for _, k := range slices.Sorted(maps.Keys(a.Claims)) {
				if err := checkClaim(k, a.Claims[k]); err != nil {
					return err
				}
			}
		}
	}
	if err := checkText("evidence", a.Evidence, textRule{max: MaxEvidenceBytes, bytes: true, multiline: true}); err != nil {
		return err
	}
	if a.Expires < 0 {
		return fmt.Errorf("%w: the expiry %d is before 1970; use 0 for an attestation that does not expire", ErrInvalid, a.Expires)
	}
	if a.Expires != 0 && created > 0 && a.Expires <= created {
		return fmt.Errorf("%w: the attestation expires (%d) before it was created (%d)", ErrInvalid, a.Expires, created)
	}
	return nil
}

func checkClaim(k, v string) error {
	if err := checkText("claim name", k, textRule{min: 1, max: MaxClaimKeyLen, noSpace: true}); err != nil {
		return err
	}
	if err := checkText("claim value", v, textRule{max: MaxClaimValueLen, multiline: true}); err != nil {
		return fmt.Errorf("%w (claim %q)", err, clip(k))
	}
	return nil
}

// checkPredicate requires a URI-like name: a scheme (a letter, then letters,
// digits, "+", "-" or "."), a colon, and more, with no spaces or
// non-printable characters anywhere.
func checkPredicate(p string) error {
	if err := checkText("predicate", p, textRule{min: 1, max: MaxPredicateLen, noSpace: true}); err != nil {
		return err
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == ':' && i > 0 && i < len(p)-1:
			return nil
		case isAlpha(c), i > 0 && (isDigit(c) || c == '+' || c == '-' || c == '.'):
		default:
			return fmt.Errorf("%w: the predicate %q is not a URI; write it like \"agora:audit/deterministic/v1\" or \"https://example.org/audit/v1\"", ErrInvalid, clip(p))
		}
	}
	return fmt.Errorf("%w: the predicate %q is not a URI; write it like \"agora:audit/deterministic/v1\" or \"https://example.org/audit/v1\"", ErrInvalid, clip(p))
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// MarshalCBOR encodes the attestation in its canonical wire form, so it can
// be passed to record.Sign as it is. It does not validate.
func (a Attestation) MarshalCBOR() ([]byte, error) {
	return canon.Marshal(a.toWire())
}

// UnmarshalCBOR decodes with the strictness of DecodeAttestation.
func (a *Attestation) UnmarshalCBOR(b []byte) error {
	v, err := DecodeAttestation(b)
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// DecodeAttestation reads an attestation body and checks it on its own
// (Validate(0)). Use DecodeRecord to check it against its record as well.
func DecodeAttestation(raw []byte) (Attestation, error) {
	return decodeAttestation(raw, 0)
}

func decodeAttestation(raw []byte, created int64) (Attestation, error) {
	var w attestationWire
	if err := decodeWire(record.KindAttestation, raw, &w); err != nil {
		return Attestation{}, err
	}
	a := w.fromWire()
	if err := a.Validate(created); err != nil {
		return Attestation{}, err
	}
	if err := checkReencodes(record.KindAttestation, raw, w); err != nil {
		return Attestation{}, err
	}
	return a, nil
}

var recordPrefix = cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: mh.SHA2_256, MhLength: 32}

// isRecordID reports whether c has the shape of a record ID.
func isRecordID(c cid.Cid) bool {
	if !c.Defined() {
		return false
	}
	p := c.Prefix()
	return p.Version == recordPrefix.Version && p.Codec == recordPrefix.Codec &&
		p.MhType == recordPrefix.MhType && p.MhLength == recordPrefix.MhLength
}
