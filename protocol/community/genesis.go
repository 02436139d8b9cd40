package community

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/agora-p2p/agora/protocol/record"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Genesis limits. Lengths of text are in characters (Unicode code points).
const (
	MaxNameLen        = 64
	MaxDescriptionLen = 1024
	MaxFounders       = 32
	MaxBootstrap      = 16
)

// ErrInvalidGenesis reports a community definition that breaks a rule below.
var ErrInvalidGenesis = errors.New("the community definition is invalid")

// Genesis is the body of a community's first record. The community ID is
// the CID of the signed genesis record, so nothing in it can change; later
// changes are governance records.
type Genesis struct {
	Name        string
	Description string
	// Founders are the pre-trusted seeds of reputation. The genesis author
	// must be one of them.
	Founders []peer.ID
	// Bootstrap holds multiaddrs, each ending in /p2p/<peer ID>, that new
	// members dial first.
	Bootstrap []string
	Policy    Policy
}

type genesisWire struct {
	Name        string   `cbor:"name"`
	Description string   `cbor:"description"`
	Founders    [][]byte `cbor:"founders"`
	Bootstrap   []string `cbor:"bootstrap"`
	Policy      Policy   `cbor:"policy"`
}

func (g Genesis) toWire() genesisWire {
	w := genesisWire{
		Name:        g.Name,
		Description: g.Description,
		Founders:    make([][]byte, len(g.Founders)),
		Bootstrap:   g.Bootstrap,
		Policy:      g.Policy,
	}
	for i, f := range g.Founders {
		w.Founders[i] = []byte(f)
	}
	return w
}

func (w genesisWire) fromWire() Genesis {
	g := Genesis{
		Name:        w.Name,
		Description: w.Description,
		Founders:    make([]peer.ID, len(w.Founders)),
		Bootstrap:   w.Bootstrap,
		Policy:      w.Policy,
	}
	for i, f := range w.Founders {
		g.Founders[i] = peer.ID(f)
	}
	return g
}

// Validate checks the rules every node applies to a genesis.
func (g Genesis) Validate() error {
	if err := checkText("name", g.Name, 1, MaxNameLen, false); err != nil {
		return err
	}
	if strings.TrimSpace(g.Name) != g.Name {
		return fmt.Errorf("%w: the name must not start or end with a space", ErrInvalidGenesis)
	}
	if err := checkText("description", g.Description, 0, MaxDescriptionLen, true); err != nil {
		return err
	}
	if n := len(g.Founders); n < 1 || n > MaxFounders {
		return fmt.Errorf("%w: a community needs 1 to %d founders, not %d", ErrInvalidGenesis, MaxFounders, n)
	}
	seen := make(map[peer.ID]bool, len(g.Founders))
	for i, f := range g.Founders {
		if _, err := record.AuthorKey(f); err != nil {
			return fmt.Errorf("%w: founder %d is not an Agora peer ID: %w", ErrInvalidGenesis, i+1, err)
		}
		if seen[f] {
			return fmt.Errorf("%w: founder %s is listed twice", ErrInvalidGenesis, f)
		}
		seen[f] = true
	}
	if n := len(g.Bootstrap); n > MaxBootstrap {
		return fmt.Errorf("%w: at most %d bootstrap addresses are allowed, not %d", ErrInvalidGenesis, MaxBootstrap, n)
	}
	for _, s := range g.Bootstrap {
		if _, err := parseP2PAddr(s); err != nil {
			return fmt.Errorf("%w: bootstrap address %q: %w", ErrInvalidGenesis, clip(s), err)
		}
	}
	if err := g.Policy.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidGenesis, err)
	}
	return nil
}

// checkText enforces valid UTF-8, a length in characters and printable
// characters only (plus newline and tab where multiline is allowed), so
// names cannot smuggle terminal escapes or bidi tricks into a UI.
func checkText(field, s string, min, max int, multiline bool) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: the %s is not valid UTF-8 text", ErrInvalidGenesis, field)
	}
	if n := utf8.RuneCountInString(s); n < min || n > max {
		return fmt.Errorf("%w: the %s must be %d to %d characters long, not %d", ErrInvalidGenesis, field, min, max, n)
	}
	for _, r := range s {
		if multiline && (r == '\n' || r == '\t') {
			continue
		}
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%w: the %s contains the non-printable character %U", ErrInvalidGenesis, field, r)
		}
	}
	return nil
}

// parseP2PAddr parses a multiaddr that ends in /p2p/<peer ID>, the only kind
// a node can dial without already knowing who is at the other end.
func parseP2PAddr(s string) (ma.Multiaddr, error) {
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, fmt.Errorf("not a multiaddr: %w", err)
	}
	return a, checkP2PAddr(a)
}

func checkP2PAddr(a ma.Multiaddr) error {
	if len(a) == 0 {
		return errors.New("empty address")
	}
	if _, err := peer.IDFromP2PAddr(a); err != nil {
		return errors.New("the address must end in /p2p/<peer ID>")
	}
	return nil
}

// NewGenesis validates g and signs it as a new community's genesis record.
// The signer must be one of g's founders. The community ID is the returned
// record's CID.
func NewGenesis(key crypto.PrivKey, g Genesis, created time.Time) (*record.Record, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	if key == nil {
		return nil, fmt.Errorf("%w: no signing key", record.ErrBadAuthor)
	}
	author, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", record.ErrBadAuthor, err)
	}
	if !isFounder(g, author) {
		return nil, fmt.Errorf("%w: the signer %s must be one of the founders", ErrInvalidGenesis, author)
	}
	return record.Sign(key, record.KindCommunity, cid.Undef, g.toWire(), created)
}

// ParseGenesis reads the genesis from a community record. It does not check
// the signature or clock: pass records through record.Open first.
func ParseGenesis(rec *record.Record) (Genesis, error) {
	if rec == nil {
		return Genesis{}, fmt.Errorf("%w: no genesis record", ErrInvalidGenesis)
	}
	if rec.Kind != record.KindCommunity {
		return Genesis{}, fmt.Errorf("%w: the record is of kind %q, not %q", ErrInvalidGenesis, clip(string(rec.Kind)), record.KindCommunity)
	}
	if rec.Community.Defined() {
		return Genesis{}, fmt.Errorf("%w: a genesis record must not name a community", ErrInvalidGenesis)
	}
	var w genesisWire
	if err := rec.DecodeBody(&w); err != nil {
		return Genesis{}, fmt.Errorf("%w: %w", ErrInvalidGenesis, err)
	}
	g := w.fromWire()
	if err := g.Validate(); err != nil {
		return Genesis{}, err
	}
	if !isFounder(g, rec.Author) {
		return Genesis{}, fmt.Errorf("%w: its author %s is not one of its founders", ErrInvalidGenesis, rec.Author)
	}
	return g, nil
}

func isFounder(g Genesis, id peer.ID) bool {
	return slices.Contains(g.Founders, id)
}

// clip keeps hostile strings from bloating error messages and logs.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
