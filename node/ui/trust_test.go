package ui

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestTrustAttestField(t *testing.T) {
	for msg, want := range map[string]string{
		`the record's body uses a field or value this node does not know; upgrade Agora to read it: subject type "x"`: "subject_type",
		"the attestation has no verdict; use pass, fail or warn":                                                      "verdict",
		`the predicate "x" is not a URI; write it like "agora:audit/deterministic/v1"`:                                "predicate",
		"the evidence must be at most 4096 bytes long, not 5000":                                                      "evidence",
		`the subject "abc" is not a peer ID: bad`:                                                                     "subject_id",
		"the subject ID must be 1 to 256 bytes long, not 0":                                                           "subject_id",
		"this node is in 2 communities; choose one with --community":                                                  "",
	} {
		if got := trustAttestField(msg); got != want {
			t.Errorf("%q → %q, want %q", msg, got, want)
		}
	}
}

func TestTrustLevelChart(t *testing.T) {
	c := trustLevelChart("Personal reputation", []float64{1000, 900, 100, 0})
	var counts []float64
	for _, b := range c.Bars {
		counts = append(counts, b.Value)
	}
	if len(counts) != 5 || counts[0] != 2 || counts[4] != 2 || c.Bars[4].Label != "800–1000" {
		t.Fatalf("bars %+v", c.Bars)
	}
	if trustLevelChart("x", nil).SVG() != "" {
		t.Fatal("a chart of no peers")
	}
}

func TestTrustPage(t *testing.T) {
	n := newCTNode()
	c := newCTServer(t, n)
	code, page := c.get("/trust")
	if code != http.StatusOK {
		t.Fatalf("GET /trust: %d\n%s", code, page)
	}
	for _, want := range []string{
		`data-testid="rep-personal"`, `data-peer="` + ctB + `"`, `45.0%`, `900/1000`, `distrusted`, `seed`,
		// The community vector is not computed: the API's sentence instead.
		`not computed yet`,
		`class="chart"`, `data-subject="agent:` + ctB + `/builtin"`, `data-subject="peer:` + ctC + `"`,
		`2 passing attestations from qualified auditors`, `<label for="tr-peer">`, `<label for="at-type">`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	// Only this node's own attestation has a Revoke button.
	if strings.Count(page, `data-testid="revoke"`) != 1 || !strings.Contains(page, `name="cid" value="bafya1"`) {
		t.Errorf("revoke buttons: %d", strings.Count(page, `data-testid="revoke"`))
	}
	if code, _ = c.get("/trust?community=nope"); code != http.StatusNotFound {
		t.Errorf("an unknown community: %d", code)
	}
}

func TestTrustForms(t *testing.T) {
	n := newCTNode()
	c := newCTServer(t, n)

	// Trusting a peer: a bad ID gets the API's sentence at the field.
	code, _, page := c.post("/trust/peers", url.Values{"peer": {"not-a-peer"}, "community": {"bafycomm"}})
	if code != http.StatusBadRequest || !strings.Contains(page, `id="tr-peer-err"`) || !strings.Contains(page, "is not a peer ID") ||
		!strings.Contains(page, `value="not-a-peer"`) {
		t.Fatalf("bad peer: %d\n%s", code, page)
	}
	code, _, page = c.post("/trust/peers", url.Values{"peer": {""}})
	if code != http.StatusBadRequest || !strings.Contains(page, `id="tr-peer-err"`) {
		t.Fatalf("empty peer: %d", code)
	}
	code, loc, _ := c.post("/trust/peers", url.Values{"peer": {" " + ctB + " "}, "community": {"bafycomm"}})
	if code != http.StatusSeeOther || loc != "/trust?community=bafycomm#trusted-h" || len(n.trusted) != 1 || n.trusted[0].PeerID != ctB {
		t.Fatalf("trust: %d %q %+v", code, loc, n.trusted)
	}
	_, page = c.get("/trust")
	if !strings.Contains(page, "trusted by you") || !strings.Contains(page, `aria-label="Stop trusting `+ctB+`"`) {
		t.Error("the trusted peer is not shown")
	}
	if code, _, _ = c.post("/trust/peers/remove", url.Values{"peer": {ctB}}); code != http.StatusSeeOther || len(n.trusted) != 0 {
		t.Fatalf("remove: %d %+v", code, n.trusted)
	}
	if code, _, page = c.post("/trust/peers/remove", url.Values{"peer": {ctB}}); code != http.StatusNotFound || !strings.Contains(page, "is not among the peers") {
		t.Fatalf("remove again: %d", code)
	}

	// Attesting: the body has the API's shape; a bad predicate is shown at
	// its field with what was typed kept.
	form := url.Values{"community": {"bafycomm"}, "subject_type": {"agent"}, "subject_id": {" " + ctB + "/builtin "},
		"predicate": {"manual"}, "verdict": {"warn"}, "evidence": {"line 1\r\nline 2"}}
	code, _, page = c.post("/trust/attest", form)
	if code != http.StatusBadRequest || !strings.Contains(page, `id="at-pred-err"`) || !strings.Contains(page, "is not a URI") ||
		!strings.Contains(page, `<option value="warn" selected>`) || !strings.Contains(page, `value="manual"`) {
		t.Fatalf("bad predicate: %d\n%s", code, page)
	}
	form.Set("predicate", "agora:audit/manual/v1")
	code, loc, _ = c.post("/trust/attest", form)
	if code != http.StatusSeeOther || loc != "/trust?community=bafycomm#att-h" || len(n.published) != 1 {
		t.Fatalf("attest: %d %q", code, loc)
	}
	p := n.published[0]
	sub, _ := p.Body["subject"].(map[string]any)
	if p.Kind != "attestation" || p.Community != "bafycomm" || sub["type"] != "agent" || sub["id"] != ctB+"/builtin" ||
		p.Body["predicate"] != "agora:audit/manual/v1" || p.Body["verdict"] != "warn" || p.Body["evidence"] != "line 1\nline 2" {
		t.Fatalf("published %+v", p)
	}

	// Revoking: a revocation of the record, in the record's community.
	code, loc, _ = c.post("/trust/revoke", url.Values{"cid": {"bafya1"}, "community": {"bafycomm"}})
	if code != http.StatusSeeOther || loc != "/trust?community=bafycomm#att-h" || len(n.published) != 2 {
		t.Fatalf("revoke: %d %q", code, loc)
	}
	if p := n.published[1]; p.Kind != "revocation" || p.Body["target"] != "bafya1" {
		t.Fatalf("revocation %+v", p)
	}
	if code, _, page = c.post("/trust/revoke", url.Values{"cid": {"bafynothing"}}); code != http.StatusNotFound || !strings.Contains(page, "No such record") {
		t.Fatalf("revoke an unknown record: %d", code)
	}

	// Without the session's CSRF token nothing happens.
	for _, path := range []string{"/trust/peers", "/trust/attest", "/trust/revoke", "/trust/peers/remove"} {
		if code, _, _ := c.post(path, url.Values{"csrf": {""}, "peer": {ctC}, "cid": {"bafya1"}}); code != http.StatusForbidden {
			t.Errorf("%s without the CSRF token: %d", path, code)
		}
	}
	if len(n.published) != 2 || len(n.trusted) != 0 {
		t.Fatalf("a refused form changed something: %+v %+v", n.published, n.trusted)
	}
}
