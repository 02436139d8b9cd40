package node

import (
	"github.com/prometheus/client_golang/prometheus"
)

// registryCollector exports the registry's, the replicator's and the
// penalty table's counters, read when Prometheus scrapes.
type registryCollector struct{ n *Node }

var (
	descStored     = prometheus.NewDesc("agora_records_stored_total", "Records newly stored in the registry.", nil, nil)
	descDuplicates = prometheus.NewDesc("agora_records_duplicate_total", "Records offered again (already stored).", nil, nil)
	descRejected   = prometheus.NewDesc("agora_records_rejected_total", "Records the registry refused, by reason.", []string{"reason"}, nil)
	descSyncs      = prometheus.NewDesc("agora_registry_disk_syncs_total", "Disk syncs of the registry's committer.", nil, nil)
	descSessions   = prometheus.NewDesc("agora_sync_sessions_total", "Reconciliation sessions, by side.", []string{"side"}, nil)
	descFetched    = prometheus.NewDesc("agora_sync_records_fetched_total", "Records fetched by reconciliation.", nil, nil)
	descSyncBytes  = prometheus.NewDesc("agora_sync_bytes_total", "Bytes on reconciliation streams, by direction.", []string{"direction"}, nil)
	descFaults     = prometheus.NewDesc("agora_peer_faults_total", "Provable protocol faults by peers, by reason (where seen:which rule).", []string{"reason"}, nil)
	descDrops      = prometheus.NewDesc("agora_peers_dropped_total", "Disconnections of peers for repeated faults.", nil, nil)
)

func (c registryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStored, descDuplicates, descRejected, descSyncs, descSessions,
		descFetched, descSyncBytes, descFaults, descDrops} {
		ch <- d
	}
}

func (c registryCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	if st := c.n.Store; st != nil {
		s := st.Stats()
		counter(descStored, float64(s.Stored))
		counter(descDuplicates, float64(s.Duplicates))
		counter(descSyncs, float64(s.Syncs))
		for reason, v := range s.Rejected {
			counter(descRejected, float64(v), reason)
		}
	}
	if r := c.n.Repl; r != nil {
		s := r.Stats()
		counter(descSessions, float64(s.SessionsInitiated), "initiated")
		counter(descSessions, float64(s.SessionsServed), "served")
		counter(descFetched, float64(s.RecordsFetched))
		counter(descSyncBytes, float64(s.BytesSent), "sent")
		counter(descSyncBytes, float64(s.BytesReceived), "received")
		p := r.Penalties().Stats()
		for src, v := range p.Faults {
			counter(descFaults, float64(v), src)
		}
		counter(descDrops, float64(p.Drops))
	}
}
