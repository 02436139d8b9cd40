package community

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agora-p2p/agora/protocol/canon"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/ipfs/go-cid"
	ma "github.com/multiformats/go-multiaddr"
)

const (
	// InvitePrefix starts every invite so a pasted string is recognisable.
	InvitePrefix = "agora-invite:"
	// MaxInviteLen bounds an invite string before any decoding. It fits a
	// maximal genesis record (64 KiB, about 87 KiB in base64) plus addresses.
	MaxInviteLen = 128 << 10
	// MaxInviteAddrs bounds the addresses an invite carries.
	MaxInviteAddrs = 16
	// inviteCheckLen is the length of the checksum after the CBOR payload.
	inviteCheckLen = 4
)

// ErrInvalidInvite matches every error ParseInvite returns. The error text
// itself tells the user what went wrong and what to do.
var ErrInvalidInvite = errors.New("this is not a valid Agora invite; ask the member who sent it for a fresh one")

// Invite is everything a new member needs to join: the signed genesis (which
// is the community's identity) and addresses of members to dial.
//
// The addresses are not signed: anyone who can change an invite in transit
// can replace them, though not the genesis. The /p2p/ peer ID in each
// address is authenticated when it is dialled. A checksum over the whole
// invite catches accidental damage from copying and pasting.
type Invite struct {
	Genesis *record.Record
	// Addrs each end in /p2p/<peer ID>.
	Addrs []ma.Multiaddr
}

type inviteWire struct {
	Genesis []byte   `cbor:"genesis"` // the encoded genesis record
	Addrs   [][]byte `cbor:"addrs"`   // binary multiaddrs
}

// ID returns the community ID, or cid.Undef for an invite with no genesis.
func (inv Invite) ID() cid.Cid {
	if inv.Genesis == nil {
		return cid.Undef
	}
	return inv.Genesis.CID()
}

// Encode returns the invite string. It refuses to produce an invite that
// ParseInvite would reject for its content (it does not check the clock).
func (inv Invite) Encode() (string, error) {
	if _, err := ParseGenesis(inv.Genesis); err != nil {
		return "", fmt.Errorf("encode invite: %w", err)
	}
	if err := inv.Genesis.Verify(); err != nil {
		return "", fmt.Errorf("encode invite: %w", err)
	}
	if n := len(inv.Addrs); n > MaxInviteAddrs {
		return "", fmt.Errorf("encode invite: %d addresses, at most %d are allowed", n, MaxInviteAddrs)
	}
	raw, err := inv.Genesis.Encode()
	if err != nil {
		return "", fmt.Errorf("encode invite: %w", err)
	}
	w := inviteWire{Genesis: raw, Addrs: make([][]byte, len(inv.Addrs))}
	for i, a := range inv.Addrs {
		if err := checkP2PAddr(a); err != nil {
			return "", fmt.Errorf("encode invite: address %s: %w", a, err)
		}
		w.Addrs[i] = a.Bytes()
	}
	b, err := canon.Marshal(w)
	if err != nil {
		return "", fmt.Errorf("encode invite: %w", err)
	}
	s := InvitePrefix + base64.RawURLEncoding.EncodeToString(append(b, inviteCheck(b)...))
	if len(s) > MaxInviteLen {
		return "", fmt.Errorf("encode invite: %d characters, more than the limit of %d", len(s), MaxInviteLen)
	}
	return s, nil
}

// String returns the invite string, or "" if the invite cannot be encoded
// (see Encode).
func (inv Invite) String() string {
	s, err := inv.Encode()
	if err != nil {
		return ""
	}
	return s
}

// ParseInvite reads an invite string as pasted by a user: surrounding and
// embedded whitespace (line wrapping by mail or chat clients) is ignored.
// It verifies the genesis signature and checks its creation time against
// now. Every error matches ErrInvalidInvite and also wraps the underlying
// record or genesis error where there is one.
func ParseInvite(s string, now time.Time) (Invite, error) {
	if len(s) > MaxInviteLen {
		return Invite{}, inviteError(fmt.Sprintf("this text is too long to be an Agora invite (%d characters, the limit is %d)", len(s), MaxInviteLen), nil, true)
	}
	s = strings.Join(strings.Fields(s), "")
	if len(s) < len(InvitePrefix) || !strings.EqualFold(s[:len(InvitePrefix)], InvitePrefix) {
		return Invite{}, inviteError(fmt.Sprintf("this is not an Agora invite: it should start with %q", InvitePrefix), nil, true)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s[len(InvitePrefix):])
	if err == nil && (len(b) < inviteCheckLen || !bytes.Equal(inviteCheck(b[:len(b)-inviteCheckLen]), b[len(b)-inviteCheckLen:])) {
		err = errors.New("checksum mismatch")
	}
	if err != nil {
		return Invite{}, inviteError("this Agora invite is damaged: part of it is missing or was changed when it was copied", err, true)
	}
	b = b[:len(b)-inviteCheckLen]
	var w inviteWire
	if err := canon.Unmarshal(b, &w); err != nil {
		return Invite{}, inviteError("this Agora invite is damaged: its contents cannot be read", err, true)
	}
	if n := len(w.Addrs); n > MaxInviteAddrs {
		return Invite{}, inviteError(fmt.Sprintf("this Agora invite lists %d addresses, more than the %d allowed", n, MaxInviteAddrs), nil, true)
	}
	rec, err := record.Open(w.Genesis, now)
	switch {
	case errors.Is(err, record.ErrBadSignature), errors.Is(err, record.ErrBadAuthor):
		return Invite{}, inviteError("this Agora invite is forged or was changed: its community definition is not correctly signed", err, true)
	case errors.Is(err, record.ErrFromFuture):
		return Invite{}, inviteError("this Agora invite was created in the future; check that this computer's date and time are correct, then try again", err, false)
	case errors.Is(err, record.ErrUnknownVersion), errors.Is(err, record.ErrUnknownKind):
		return Invite{}, inviteError("this Agora invite was made by a newer version of Agora; upgrade Agora, then try again", err, false)
	case err != nil:
		return Invite{}, inviteError("this Agora invite is damaged: its community definition cannot be read", err, true)
	}
	if _, err := ParseGenesis(rec); err != nil {
		return Invite{}, inviteError("this Agora invite does not contain a valid community definition", err, true)
	}
	addrs := make([]ma.Multiaddr, 0, len(w.Addrs))
	for i, ab := range w.Addrs {
		a, err := ma.NewMultiaddrBytes(ab)
		if err == nil {
			err = checkP2PAddr(a)
		}
		if err != nil {
			return Invite{}, inviteError(fmt.Sprintf("this Agora invite has an unusable address (number %d)", i+1), err, true)
		}
		addrs = append(addrs, a)
	}
	return Invite{Genesis: rec, Addrs: addrs}, nil
}

// inviteCheck is the first bytes of SHA-256 of the payload, in the manner of
// Base58Check: it is for typos, not for attackers.
func inviteCheck(payload []byte) []byte {
	h := sha256.Sum256(payload)
	return h[:inviteCheckLen]
}

// invalidInvite is a user-facing sentence that matches ErrInvalidInvite and
// the underlying cause.
type invalidInvite struct {
	msg   string
	cause error
}

func inviteError(msg string, cause error, askForNew bool) error {
	if askForNew {
		msg += "; ask the member who sent it for a fresh one"
	}
	return &invalidInvite{msg: msg, cause: cause}
}

func (e *invalidInvite) Error() string {
	if e.cause == nil {
		return e.msg
	}
	return e.msg + " (" + e.cause.Error() + ")"
}

func (e *invalidInvite) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrInvalidInvite}
	}
	return []error{ErrInvalidInvite, e.cause}
}
