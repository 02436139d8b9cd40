package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestSetAndGet(t *testing.T) {
	for _, tc := range []struct {
		key, value, want string
	}{
		{"profile", "lowpower", "lowpower"},
		{"p2p.listen", "/ip4/127.0.0.1/tcp/0, /ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/udp/0/quic-v1"},
		{"p2p.mdns", "false", "false"},
		{"p2p.conn_high", "500", "500"},
		{"api.listen", "127.0.0.1:0", "127.0.0.1:0"},
		{"log.format", "json", "json"},
	} {
		c := Default()
		if err := c.Set(tc.key, tc.value); err != nil {
			t.Fatalf("Set(%s, %s): %v", tc.key, tc.value, err)
		}
		got, err := c.Get(tc.key)
		if err != nil || got != tc.want {
			t.Fatalf("Get(%s) = %q, %v; want %q", tc.key, got, err, tc.want)
		}
	}
}

func TestSetRejectsBadValuesAndLeavesConfigUnchanged(t *testing.T) {
	for _, tc := range []struct {
		key, value, wantErr string
	}{
		{"nope", "1", "unknown config key"},
		{"profile", "turbo", "profile must be one of"},
		{"p2p.listen", "not-an-addr", "not a valid multiaddr"},
		{"p2p.listen", "", "at least one multiaddr"},
		{"p2p.bootstrap", "/ip4/1.2.3.4/tcp/4242", "must end in /p2p/"},
		{"p2p.mdns", "maybe", "true or false"},
		{"p2p.conn_low", "-1", "cannot be negative"},
		{"p2p.conn_high", "x", "whole number"},
		{"p2p.max_memory_mb", "8", "at least 32"},
		{"p2p.dht", "sometimes", "p2p.dht must be one of"},
		{"api.listen", "4243", "host:port"},
		{"api.listen", "example.com:4243", "IP address or localhost"},
		{"api.listen", "127.0.0.1:99999", "bad port"},
		{"log.level", "loud", "log.level must be one of"},
	} {
		c := Default()
		before, _ := c.Marshal()
		err := c.Set(tc.key, tc.value)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("Set(%q, %q) = %v; want error containing %q", tc.key, tc.value, err, tc.wantErr)
		}
		after, _ := c.Marshal()
		if string(before) != string(after) {
			t.Errorf("Set(%q, %q) changed the config despite the error", tc.key, tc.value)
		}
	}
}

func TestConnLowAboveHigh(t *testing.T) {
	c := Default()
	if err := c.Set("p2p.conn_high", "10"); err != nil {
		t.Fatal(err)
	}
	if err := c.Set("p2p.conn_low", "20"); err == nil {
		t.Fatal("conn_low above conn_high accepted")
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName)
	c := Default()
	c.Set("p2p.announce", "/ip4/1.2.3.4/tcp/4242")
	c.Set("api.metrics_no_auth", "true")
	if err := c.Save(p); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("config mode %v, want 0600", st.Mode().Perm())
	}
	got, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		a, _ := c.Get(k.Name)
		b, _ := got.Get(k.Name)
		if a != b {
			t.Errorf("%s: saved %q, loaded %q", k.Name, a, b)
		}
	}
}

func TestParseRejectsUnknownKeysAndBadValues(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"profile = \"default\"\nbogus = 1\n", "unknown keys"},
		{"[p2p]\nlisten = 3\n", "line"},
		{"[api]\nlisten = \"nowhere\"\n", "api.listen"},
		{"profile = \n", "line 1"},
		// `agora config set` and AGORA_* split lists on commas, so a
		// file's entry may not hold one (found by FuzzParse).
		{"[p2p]\nlisten = [\"/dns4/a,b/tcp/1\"]\n", "cannot contain a comma"},
	} {
		if _, err := Parse([]byte(tc.text)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v; want error containing %q", tc.text, err, tc.want)
		}
	}
}

func TestPartialFileKeepsDefaults(t *testing.T) {
	c, err := Parse([]byte("[log]\nlevel = \"debug\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Log.Level != "debug" || c.API.Listen != Default().API.Listen || !c.P2P.MDNS {
		t.Fatalf("unexpected config %+v", c)
	}
}

func TestApplyEnv(t *testing.T) {
	env := map[string]string{"AGORA_API_LISTEN": "127.0.0.1:5000", "AGORA_P2P_MDNS": "false", "AGORA_LOG_LEVEL": "debug"}
	c := Default()
	if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if c.API.Listen != "127.0.0.1:5000" || c.P2P.MDNS || c.Log.Level != "debug" {
		t.Fatalf("env not applied: %+v", c)
	}
	bad := map[string]string{"AGORA_PROFILE": "turbo"}
	err := c.ApplyEnv(func(k string) (string, bool) { v, ok := bad[k]; return v, ok })
	if err == nil || !strings.Contains(err.Error(), "AGORA_PROFILE") {
		t.Fatalf("bad env value: %v", err)
	}
}

func TestEveryKeyHasHelpEnvAndFlag(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Keys() {
		if k.Help == "" {
			t.Errorf("%s has no help", k.Name)
		}
		if seen[k.Env()] || seen[k.Flag()] {
			t.Errorf("%s: env or flag name collides", k.Name)
		}
		seen[k.Env()], seen[k.Flag()] = true, true
	}
	if k, _ := Lookup("log.level"); k.Env() != "AGORA_LOG_LEVEL" || k.Flag() != "log-level" {
		t.Fatalf("log.level maps to %s / --%s", k.Env(), k.Flag())
	}
}
