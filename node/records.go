package node

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/agora-p2p/agora/registry"
)

// The JSON forms of record bodies in the API. They are converted explicitly
// to and from the wire types in protocol/body, so the API can evolve apart
// from the signed encoding.

type subjectJSON struct {
	Type   string `json:"type"`
	ID     string `json:"id"`
	Digest string `json:"digest,omitempty"` // hex
}

type attestationJSON struct {
	Subject   subjectJSON       `json:"subject"`
	Predicate string            `json:"predicate"`
	Verdict   string            `json:"verdict"`
	Claims    map[string]string `json:"claims,omitempty"`
	Evidence  string            `json:"evidence,omitempty"`
	Expires   int64             `json:"expires,omitempty"` // unix ms
}

type receiptJSON struct {
	CID       string `json:"cid"`
	Task      string `json:"task_id"`
	Requester string `json:"requester"`
	Executor  string `json:"executor"`
	Agent     string `json:"agent"`
	Skill     string `json:"skill"`
	Status    string `json:"status"`
	Started   int64  `json:"started"`
	Ended     int64  `json:"ended"`
}

type feedbackJSON struct {
	Receipt receiptJSON `json:"receipt"`
	Score   int64       `json:"score"`
	Comment string      `json:"comment,omitempty"`
}

type revocationJSON struct {
	Target string `json:"target"`
	Reason string `json:"reason,omitempty"`
}

func badRequest(format string, a ...any) error {
	return &api.Error{Code: http.StatusBadRequest, Message: fmt.Sprintf(format, a...)}
}

// strictJSON re-decodes a generic JSON object into v, refusing unknown
// fields.
func strictJSON(m map[string]any, v any) error {
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// bodyFromJSON builds the wire body of a kind a user may publish.
func bodyFromJSON(kind string, m map[string]any) (record.Kind, any, error) {
	switch record.Kind(kind) {
	case record.KindAttestation:
		var a attestationJSON
		if err := strictJSON(m, &a); err != nil {
			return "", nil, badRequest("the attestation body is not valid: %v.", err)
		}
		var digest []byte
		if a.Subject.Digest != "" {
			d, err := hex.DecodeString(a.Subject.Digest)
			if err != nil {
				return "", nil, badRequest("subject.digest must be hexadecimal: %v.", err)
			}
			digest = d
		}
		return record.KindAttestation, body.Attestation{
			Subject:   body.Subject{Type: body.SubjectType(a.Subject.Type), ID: a.Subject.ID, Digest: digest},
			Predicate: a.Predicate, Verdict: body.Verdict(a.Verdict), Claims: a.Claims,
			Evidence: a.Evidence, Expires: a.Expires,
		}, nil
	case record.KindRevocation:
		var r revocationJSON
		if err := strictJSON(m, &r); err != nil {
			return "", nil, badRequest("the revocation body is not valid: %v.", err)
		}
		target, err := cid.Decode(strings.TrimSpace(r.Target))
		if err != nil {
			return "", nil, badRequest("target must be the CID of the record to revoke: %v.", err)
		}
		return record.KindRevocation, body.Revocation{Target: target, Reason: r.Reason}, nil
	}
	if record.Kind(kind) == record.KindFeedback {
		return "", nil, badRequest("feedback rates a task's receipt: use `agora rate TASK_ID SCORE` (POST /api/v1/tasks/{id}/rate).")
	}
	return "", nil, badRequest("records of kind %q cannot be published through the API; use attestation or revocation.", kind)
}

// bodyToJSON renders a stored record's body for the API.
func bodyToJSON(r *record.Record) map[string]any {
	b, err := body.DecodeRecord(r)
	if err != nil {
		return map[string]any{}
	}
	var v any
	switch b := b.(type) {
	case body.Attestation:
		a := attestationJSON{Subject: subjectJSON{Type: string(b.Subject.Type), ID: b.Subject.ID},
			Predicate: b.Predicate, Verdict: string(b.Verdict), Claims: b.Claims, Evidence: b.Evidence, Expires: b.Expires}
		if len(b.Subject.Digest) > 0 {
			a.Subject.Digest = hex.EncodeToString(b.Subject.Digest)
		}
		v = a
	case body.Revocation:
		v = revocationJSON{Target: b.Target.String(), Reason: b.Reason}
	case body.Feedback:
		rc := b.Receipt
		v = feedbackJSON{Score: b.Score, Comment: b.Comment, Receipt: receiptJSON{CID: rc.CID().String(), Task: rc.Task,
			Requester: rc.Requester.String(), Executor: rc.Executor.String(), Agent: rc.Agent, Skill: rc.Skill,
			Status: rc.Status, Started: rc.Started, Ended: rc.Ended}}
	default:
		return map[string]any{}
	}
	raw, _ := json.Marshal(v)
	out := map[string]any{}
	json.Unmarshal(raw, &out)
	return out
}

func recordView(st *registry.Stored) api.RecordView {
	r := st.Record
	v := api.RecordView{
		CID: st.CID().String(), Kind: string(r.Kind), Community: r.Community.String(),
		Author: r.Author.String(), Created: r.Created, Body: bodyToJSON(r),
		Verified: true, Revoked: st.Revoked,
	}
	if st.Revoked {
		v.RevokedBy = st.RevokedBy.String()
	}
	return v
}

// communityFor resolves the community of a request: the one named, or the
// node's only community.
func (n *Node) communityFor(id string) (cid.Cid, error) {
	if id != "" {
		c, err := n.Comms.Get(id)
		if err != nil {
			return cid.Undef, err
		}
		return c.ID, nil
	}
	cs := n.Comms.List()
	switch len(cs) {
	case 1:
		return cid.Decode(cs[0].ID)
	case 0:
		return cid.Undef, badRequest("this node is not in any community; join one with `agora community join INVITE` first.")
	}
	names := make([]string, 0, len(cs))
	for _, c := range cs {
		names = append(names, fmt.Sprintf("%s (%s)", c.ID, c.Name))
	}
	return cid.Undef, badRequest("this node is in %d communities; choose one with --community: %s.", len(cs), strings.Join(names, ", "))
}

// registryError turns an ingest error into an API answer.
func registryError(err error) error {
	var ae *api.Error
	switch {
	case errors.As(err, &ae):
		return err
	case errors.Is(err, registry.ErrNotFound):
		return &api.Error{Code: http.StatusNotFound, Message: err.Error()}
	case errors.Is(err, registry.ErrRateLimited):
		return &api.Error{Code: http.StatusTooManyRequests, Message: err.Error()}
	case errors.Is(err, registry.ErrUnknownReference), errors.Is(err, registry.ErrNotAuthor),
		errors.Is(err, registry.ErrBadReference), errors.Is(err, body.ErrInvalid),
		registry.IsSenderFault(err):
		return &api.Error{Code: http.StatusBadRequest, Message: err.Error()}
	}
	return err
}

// Publish implements api.Backend.
func (n *Node) Publish(ctx context.Context, req api.PublishRequest) (api.Published, error) {
	c, err := n.communityFor(req.Community)
	if err != nil {
		return api.Published{}, err
	}
	kind, b, err := bodyFromJSON(req.Kind, req.Body)
	if err != nil {
		return api.Published{}, err
	}
	rec, err := n.Repl.Publish(ctx, n.Repo.Key, c, kind, b)
	if err != nil {
		return api.Published{}, registryError(err)
	}
	return api.Published{CID: rec.CID().String()}, nil
}

// Records implements api.Backend.
func (n *Node) Records(ctx context.Context, q api.RecordQuery) ([]api.RecordView, error) {
	c, err := n.communityFor(q.Community)
	if err != nil {
		return nil, err
	}
	rq := registry.Query{Community: c, Kind: record.Kind(q.Kind), Subject: q.Subject, Limit: q.Limit}
	if q.Kind != "" && !rq.Kind.Valid() {
		return nil, badRequest("unknown record kind %q.", q.Kind)
	}
	if q.Author != "" {
		if rq.Author, err = peer.Decode(q.Author); err != nil {
			return nil, badRequest("author must be a peer ID: %v.", err)
		}
	}
	sts, err := n.Store.Query(rq)
	if err != nil {
		return nil, registryError(err)
	}
	out := make([]api.RecordView, 0, len(sts))
	for _, st := range sts {
		out = append(out, recordView(st))
	}
	return out, nil
}

// Record implements api.Backend.
func (n *Node) Record(ctx context.Context, id string) (api.RecordView, error) {
	c, err := cid.Decode(strings.TrimSpace(id))
	if err != nil {
		return api.RecordView{}, badRequest("%q is not a record ID (a CID such as bafyrei...).", id)
	}
	st, err := n.Store.Get(c)
	if err != nil {
		return api.RecordView{}, registryError(err)
	}
	if err := st.Record.Verify(); err != nil {
		return api.RecordView{}, fmt.Errorf("stored record %s no longer verifies: %w", c, err)
	}
	return recordView(st), nil
}
