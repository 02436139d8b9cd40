package recon

import "fmt"

// Type is a frame's type on the wire. The enum is append-only: values are
// never reused or renumbered.
type Type uint64

const (
	TypeOpen      Type = 1
	TypeReconcile Type = 2
	TypeDone      Type = 3
	TypeFetch     Type = 4
	TypeRecords   Type = 5
	TypeError     Type = 6
	TypeCatchUp   Type = 7
)

func (t Type) String() string {
	switch t {
	case TypeOpen:
		return "open"
	case TypeReconcile:
		return "reconcile"
	case TypeDone:
		return "done"
	case TypeFetch:
		return "fetch"
	case TypeRecords:
		return "records"
	case TypeError:
		return "error"
	case TypeCatchUp:
		return "catch-up"
	}
	return fmt.Sprintf("type(%d)", uint64(t))
}

// maxSize is the largest encoded frame of type t.
func (t Type) maxSize() int {
	if t == TypeRecords {
		return MaxRecordsFrame
	}
	return MaxFrameSize
}

// Frame is one message of the sync protocol: *Open, *Reconcile, *Done,
// *Fetch, *Records or *Error. Receivers type-switch on it.
type Frame interface {
	Type() Type
	frame()
}

// Open is the initiator's first frame: the community whose records are
// reconciled and the initiator's first ranges.
type Open struct {
	Community []byte // binary CID of the community's genesis
	Ranges    []Range
}

// Reconcile carries one side's answer to the other's ranges. A responder's
// Reconcile with no ranges means every range matched or was settled.
type Reconcile struct {
	Ranges []Range
}

// Done ends the reconciliation phase; the initiator sends it.
type Done struct{}

// Fetch asks for records by CID (binary form), 1 to MaxFetchBatch of them,
// each at most once.
type Fetch struct {
	CIDs [][]byte
}

// Records answers a Fetch with encoded records. More is set on every frame of
// an answer except the last.
type Records struct {
	Records [][]byte
	More    bool
}

// CatchUp is the first frame of an initiator that holds none of the
// community's records: instead of reconciling (which would send every ID
// both ways), the responder streams all its records, in (created, ID) order,
// as Records frames (More set on all but the last). A new member's catch-up
// then costs little more than the records themselves.
type CatchUp struct {
	Community []byte // binary CID of the community's genesis
}

// Error says why the sender ends the session. Code is one of the Code
// constants (or a newer one); Reason is for humans.
type Error struct {
	Code   string
	Reason string
}

func (*Open) Type() Type      { return TypeOpen }
func (*Reconcile) Type() Type { return TypeReconcile }
func (*Done) Type() Type      { return TypeDone }
func (*Fetch) Type() Type     { return TypeFetch }
func (*Records) Type() Type   { return TypeRecords }
func (*Error) Type() Type     { return TypeError }
func (*CatchUp) Type() Type   { return TypeCatchUp }

func (*Open) frame()      {}
func (*Reconcile) frame() {}
func (*Done) frame()      {}
func (*Fetch) frame()     {}
func (*Records) frame()   {}
func (*Error) frame()     {}
func (*CatchUp) frame()   {}

func (e *Error) Error() string {
	return fmt.Sprintf("the peer ended the sync: %s: %s", e.Code, e.Reason)
}

// SplitRecords packs the answer to one Fetch into Records frames of at most
// MaxRecordsFrame bytes each, More set on all but the last. It returns one
// empty frame when records is empty. It fails if there are more records than
// MaxFetchBatch or one is empty or larger than record.MaxSize.
func SplitRecords(records [][]byte) ([]*Records, error) {
	if len(records) > MaxFetchBatch {
		return nil, fmt.Errorf("%w: %d records answer one fetch, more than %d", ErrBadFrame, len(records), MaxFetchBatch)
	}
	var out []*Records
	cur := &Records{}
	size := recordsOverhead
	for _, rec := range records {
		if len(rec) == 0 || len(rec) > maxRecordSize {
			return nil, fmt.Errorf("%w: a record of %d bytes cannot be sent (1 to %d allowed)", ErrBadFrame, len(rec), maxRecordSize)
		}
		n := cborBytesSize(len(rec))
		if len(cur.Records) > 0 && size+n > MaxRecordsFrame {
			cur.More = true
			out = append(out, cur)
			cur = &Records{}
			size = recordsOverhead
		}
		cur.Records = append(cur.Records, rec)
		size += n
	}
	return append(out, cur), nil
}

// recordsOverhead bounds a Records frame's bytes besides its records: map
// header, keys, type, more, and the array header.
const recordsOverhead = 32
