//go:build linux

package netns

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agora-p2p/agora/node/api"
)

// These scenarios need root (network namespaces, TUN devices) and
// iproute2's ip; `.ci/run` runs them as root after `make test` installed
// iproute2. Outside CI, a run without root says so and skips; in CI
// (AGORA_TESTBED=required) it fails instead.

var (
	agoraBin   string
	hostileBin string
)

func TestMain(m *testing.M) {
	if msg := unavailable(); msg != "" {
		if os.Getenv("AGORA_TESTBED") == "required" {
			fmt.Fprintln(os.Stderr, "testbed required but unavailable:", msg)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "skipping the netns testbed:", msg, "(run as root with iproute2; CI sets AGORA_TESTBED=required)")
		os.Exit(0)
	}
	CleanStale()
	dir, err := os.MkdirTemp("", "agora-testbed-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	agoraBin = filepath.Join(dir, "agora")
	hostileBin = filepath.Join(dir, "agora-hostile")
	for bin, pkg := range map[string]string{agoraBin: "../../cmd/agora", hostileBin: "./hostile"} {
		build := exec.Command("go", "build", "-o", bin, pkg)
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building", pkg+":", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func unavailable() string {
	if os.Geteuid() != 0 {
		return "not root"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "iproute2's ip is not installed"
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return "no /dev/net/tun"
	}
	return ""
}

// community creates a community on the first host, invites every other
// host, and waits until every host lists every member.
func community(t *testing.T, b *Bed) string {
	t.Helper()
	founder := b.Hosts[0]
	c, cancel := ctx(30 * time.Second)
	defer cancel()
	created, err := founder.Client.CreateCommunity(c, api.CreateCommunityRequest{Name: "testbed"})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range b.Hosts[1:] {
		join(t, founder, h, created.ID)
	}
	waitMembers(t, b, created.ID, b.Hosts)
	return created.ID
}

// join has h join community id through an invite from inviter.
func join(t *testing.T, inviter, h *Host, id string) {
	t.Helper()
	c, cancel := ctx(60 * time.Second)
	defer cancel()
	inv, err := inviter.Client.Invite(c, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Client.JoinCommunity(c, inv.Invite); err != nil {
		t.Fatalf("%s joins: %v", h.Name, err)
	}
}

// waitMembers waits until each of hosts lists all of them as members.
func waitMembers(t *testing.T, b *Bed, id string, hosts []*Host) {
	t.Helper()
	Eventually(t, 60*time.Second, "every host lists every member", func() (bool, string) {
		for _, h := range hosts {
			c, cancel := ctx(5 * time.Second)
			d, err := h.Client.Community(c, id)
			cancel()
			if err != nil {
				return false, h.Name + ": " + err.Error()
			}
			have := map[string]bool{}
			for _, m := range d.Members {
				have[m] = true
			}
			for _, o := range hosts {
				if !have[o.PeerID] {
					return false, fmt.Sprintf("%s does not list %s (%d members)", h.Name, o.Name, len(d.Members))
				}
			}
		}
		return true, ""
	})
}

// syncState is a host's (records, fingerprint) for a community.
func syncState(h *Host, id string) (int, string, error) {
	c, cancel := ctx(10 * time.Second)
	defer cancel()
	d, err := h.Client.Community(c, id)
	return d.Records, d.Fingerprint, err
}

// sameRecords reports whether every running host holds the same record set
// of want records (want < 0: any number).
func sameRecords(hosts []*Host, id string, want int) (bool, string) {
	var fp0 string
	var parts []string
	ok := true
	for i, h := range hosts {
		n, fp, err := syncState(h, id)
		if err != nil {
			return false, h.Name + ": " + err.Error()
		}
		parts = append(parts, fmt.Sprintf("%s=%d", h.Name, n))
		if i == 0 {
			fp0 = fp
		}
		if fp != fp0 || (want >= 0 && n != want) {
			ok = false
		}
	}
	return ok, strings.Join(parts, " ")
}

// metrics reads a host's Prometheus metrics.
func metrics(t *testing.T, h *Host) string {
	t.Helper()
	c, cancel := ctx(10 * time.Second)
	defer cancel()
	m, err := h.Client.Metrics(c)
	if err != nil {
		t.Fatalf("%s metrics: %v", h.Name, err)
	}
	return m
}

// publishAttestations has h publish n attestations about subject, each
// distinct, and returns their CIDs.
func publishAttestations(t *testing.T, h *Host, id, subject string, n int) []string {
	t.Helper()
	cids := make([]string, 0, n)
	for i := range n {
		c, cancel := ctx(30 * time.Second)
		p, err := h.Client.Publish(c, api.PublishRequest{Community: id, Kind: "attestation",
			Body: attestation(subject, fmt.Sprintf("%s-%d-%d", h.Name, time.Now().UnixNano(), i))})
		cancel()
		if err != nil {
			t.Fatalf("%s publishes attestation %d: %v", h.Name, i, err)
		}
		cids = append(cids, p.CID)
	}
	return cids
}

func attestation(subject, note string) map[string]any {
	return map[string]any{
		"subject":   map[string]any{"type": "peer", "id": subject},
		"predicate": "https://agora.example/testbed/v1",
		"verdict":   "pass",
		"claims":    map[string]any{"note": note},
	}
}

var _ = context.Background

func recordQuery(community string, limit int) api.RecordQuery {
	return api.RecordQuery{Community: community, Limit: limit}
}
