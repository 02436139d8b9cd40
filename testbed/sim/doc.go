// Package sim runs a community of full Agora nodes in one process, on
// libp2p's mocknet, and measures how it behaves at scale: advert
// propagation, delegation, record convergence and catch-up after churn,
// and the memory a node costs.
//
// Every node is the daemon's node (node.StartWith with a mocknet host):
// its own repo and badger datastore on disk, the registry, replication,
// gossipsub with peer scoring, communities, agents with the builtin
// skills, the capability index and advertiser, delegation, trust,
// governance and the local API. Only the host differs: a mocknet peer with
// fixed link latency instead of TCP and QUIC with the home NAT stack (see
// p2p.Wrap). Every pair of nodes is linked (any member can reach any
// other, as on the Internet); connections are what the nodes make of that.
//
// The package is a test bed: it drives nodes through their own methods and
// watches them; it must not reach into their parts to make a figure look
// better. Where the harness has to step in (an advert the network lost
// before its meshes formed), it says so in the report.
package sim
