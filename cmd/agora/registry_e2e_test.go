package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agora-p2p/agora/node/api"
)

// community starts n daemons, has the first create a community and the rest
// join it, and waits until every member sees every other.
func community(t *testing.T, names ...string) (map[string]*daemon, api.CreatedCommunity) {
	t.Helper()
	return communityWith(t, nil, nil, names...)
}

// communityWith is community with a hook that may configure each repo
// before its daemon starts, and more arguments for `community create`.
func communityWith(t *testing.T, setup func(name, dir string), createArgs []string, names ...string) (map[string]*daemon, api.CreatedCommunity) {
	t.Helper()
	base := t.TempDir()
	ds := map[string]*daemon{}
	for _, n := range names {
		dir := filepath.Join(base, n)
		initRepo(t, dir)
		if setup != nil {
			setup(n, dir)
		}
		ds[n] = startDaemon(t, dir)
	}
	var created api.CreatedCommunity
	runJSON(t, &created, append([]string{"community", "create", "registry-test", "--repo", ds[names[0]].dir}, createArgs...)...)
	for _, n := range names[1:] {
		var j api.Joined
		runJSON(t, &j, "community", "join", created.Invite, "--repo", ds[n].dir)
	}
	for _, n := range names {
		waitMembers(t, ds[n], len(names))
	}
	return ds, created
}

func waitMembers(t *testing.T, d *daemon, n int) {
	t.Helper()
	d.waitFor(t, fmt.Sprintf("%d members", n), func() bool {
		cs, err := d.client.Communities(context.Background())
		return err == nil && len(cs) == 1 && cs[0].Members == n
	})
}

// waitRecord waits until the daemon holds the record, driven by its events.
func waitRecord(t *testing.T, d *daemon, cid string, revoked bool) api.RecordView {
	t.Helper()
	var got api.RecordView
	d.waitFor(t, "record "+cid, func() bool {
		r, err := d.client.Record(context.Background(), cid)
		got = r
		return err == nil && r.Revoked == revoked
	})
	return got
}

func TestRegistryReplicatesAcrossProcesses(t *testing.T) {
	began := time.Now()
	phase := func(what string) { t.Logf("%6.2fs %s", time.Since(began).Seconds(), what) }
	ds, created := community(t, "a", "b", "c")
	phase("community up")
	a, b, c := ds["a"], ds["b"], ds["c"]
	var bID api.Identity
	runJSON(t, &bID, "id", "--repo", b.dir)

	var pub api.Published
	runJSON(t, &pub, "attest", bID.PeerID, "--subject-type", "peer", "--predicate", "agora:audit/deterministic/v1",
		"--verdict", "pass", "--claim", "samples=20", "--evidence", "all 20 outputs matched", "--repo", a.dir)
	for _, d := range []*daemon{b, c} {
		r := waitRecord(t, d, pub.CID, false)
		if r.Kind != "attestation" || !r.Verified || r.Community != created.ID || r.Body["verdict"] != "pass" {
			t.Fatalf("%s sees %+v", d.dir, r)
		}
	}
	phase("attestation everywhere")
	var recs []api.RecordView
	runJSON(t, &recs, "records", "--kind", "attestation", "--subject", "peer:"+bID.PeerID, "--repo", c.dir)
	if len(recs) != 1 || recs[0].CID != pub.CID {
		t.Fatalf("records on c: %+v", recs)
	}

	t.Run("revocation by someone else is refused", func(t *testing.T) {
		_, stderr, code := run(t, "revoke", pub.CID, "--repo", b.dir)
		if code == 0 || !strings.Contains(stderr, "own author") {
			t.Fatalf("b revoking a's record: exit %d, %q", code, stderr)
		}
	})
	t.Run("bad attestations are refused", func(t *testing.T) {
		for _, args := range [][]string{
			{"attest", bID.PeerID, "--subject-type", "planet", "--predicate", "p:x", "--verdict", "pass"},
			{"attest", "not-a-peer", "--subject-type", "peer", "--predicate", "p:x", "--verdict", "pass"},
			{"attest", bID.PeerID, "--subject-type", "peer", "--predicate", "p:x", "--verdict", "maybe"},
			{"attest", bID.PeerID, "--subject-type", "peer", "--predicate", "p:x", "--verdict", "pass", "--evidence", strings.Repeat("x", 5000)},
		} {
			_, stderr, code := run(t, append(args, "--repo", a.dir)...)
			if code == 0 || stderr == "" {
				t.Errorf("%v: exit %d, %q", args, code, stderr)
			}
		}
	})

	var rev api.Published
	runJSON(t, &rev, "revoke", pub.CID, "--reason", "superseded", "--repo", a.dir)
	for _, d := range []*daemon{a, b, c} {
		if r := waitRecord(t, d, pub.CID, true); r.RevokedBy != rev.CID {
			t.Fatalf("%s: revoked by %q, want %q", d.dir, r.RevokedBy, rev.CID)
		}
	}

	phase("revocation everywhere")
	// C is offline while A publishes 500 attestations; on restart it
	// catches up by sync, with no gossip to help it.
	c.stop(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 500)
	sem := make(chan struct{}, 16)
	for i := 0; i < 500; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			_, err := a.client.Publish(ctx, api.PublishRequest{Kind: "attestation", Body: map[string]any{
				"subject": map[string]any{"type": "skill", "id": fmt.Sprintf("text.stats-%d", i)}, "predicate": "agora:audit/deterministic/v1", "verdict": "pass"}})
			if err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := 502
	phase("published 500")
	c = startDaemon(t, c.dir)
	c.waitFor(t, "catch-up of 502 records", func() bool {
		recs, err := c.client.Records(ctx, api.RecordQuery{Limit: 10000})
		return err == nil && len(recs) == want
	})

	phase("caught up")
	// kill -9 right after a publish is acknowledged: the record survives.
	var last api.Published
	runJSON(t, &last, "attest", bID.PeerID, "--subject-type", "peer", "--predicate", "agora:audit/x/v1", "--verdict", "warn", "--repo", a.dir)
	a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.done
	a = startDaemon(t, a.dir)
	var got api.RecordView
	runJSON(t, &got, "record", last.CID, "--repo", a.dir)
	if got.CID != last.CID || !got.Verified {
		t.Fatalf("after kill -9: %+v", got)
	}
	for _, d := range []*daemon{a, b, c} {
		d.stop(t)
	}
	phase("done")
}
