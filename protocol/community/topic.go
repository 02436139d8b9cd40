package community

import "github.com/ipfs/go-cid"

// Topic names end in a version so a future wire change gets a new topic
// instead of confusing old validators.

// AdvertsTopic is the gossipsub topic of a community's capability adverts.
func AdvertsTopic(id cid.Cid) string {
	return "agora/" + id.String() + "/adverts/1"
}

// RecordsTopic is the gossipsub topic of a community's new durable records.
func RecordsTopic(id cid.Cid) string {
	return "agora/" + id.String() + "/records/1"
}
