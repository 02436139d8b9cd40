// Package config owns the node's settings: the config.toml schema, its
// defaults and profiles, and the single table of keys through which a
// setting is read from the file, an AGORA_* environment variable or a flag.
// It does no I/O beyond reading and writing config.toml.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	ma "github.com/multiformats/go-multiaddr"
	toml "github.com/pelletier/go-toml/v2"
)

// FileName is the config file inside a repo.
const FileName = "config.toml"

// Profiles tune the node for the machine it runs on.
const (
	ProfileDefault  = "default"
	ProfileLowPower = "lowpower"
	ProfileServer   = "server"
)

// Config is config.toml. Every leaf field is a key ("p2p.listen"), an
// AGORA_P2P_LISTEN environment variable and a --p2p-listen flag; the help
// tag is the one line shown by `agora config` and the flag help.
type Config struct {
	Profile string `toml:"profile" help:"resource profile: default, lowpower (small machines, battery) or server (public, always-on)"`
	P2P     P2P    `toml:"p2p"`
	API     API    `toml:"api"`
	Log     Log    `toml:"log"`
	Trust   Trust  `toml:"trust"`
}

// P2P configures the libp2p host.
type P2P struct {
	Listen      []string `toml:"listen" help:"multiaddrs to listen on (port 0 picks a free port)"`
	Announce    []string `toml:"announce" help:"multiaddrs to announce instead of the detected ones (empty: automatic)"`
	Bootstrap   []string `toml:"bootstrap" help:"extra peers to dial at start, as multiaddrs ending in /p2p/<peer-id>"`
	NATPortMap  bool     `toml:"nat_port_map" help:"ask the home router for a port mapping through UPnP or NAT-PMP"`
	MDNS        bool     `toml:"mdns" help:"discover peers on the local network with mDNS"`
	DHT         string   `toml:"dht" help:"Kademlia DHT mode: auto, client, server or off"`
	RelayClient bool     `toml:"relay_client" help:"use circuit relays and hole punching when behind NAT"`
	RelayServe  bool     `toml:"relay_service" help:"act as a circuit relay for other members, only while this node is publicly reachable"`
	ConnLow     int      `toml:"conn_low" help:"connection manager low water mark (0: from the profile)"`
	ConnHigh    int      `toml:"conn_high" help:"connection manager high water mark (0: from the profile)"`
	MaxMemoryMB int      `toml:"max_memory_mb" help:"memory the libp2p resource manager may use in MiB (0: scaled to the machine and profile)"`
}

// API configures the local HTTP API.
type API struct {
	Listen        string `toml:"listen" help:"host:port of the local HTTP API (port 0 picks a free port)"`
	MetricsNoAuth bool   `toml:"metrics_no_auth" help:"serve /metrics without the API token (for a local Prometheus)"`
}

// Trust configures feedback, delegation by reputation and audits.
type Trust struct {
	Feedback       bool `toml:"feedback" help:"rate every task another member runs for this node with a feedback record, automatically"`
	ScoreCompleted int  `toml:"score_completed" help:"automatic feedback score, in thousandths, for a completed task"`
	ScoreFailed    int  `toml:"score_failed" help:"automatic feedback score, in thousandths, for a task the provider failed"`
	ScoreTimeout   int  `toml:"score_timeout" help:"automatic feedback score, in thousandths, for a task that ran out of time on the provider"`
	CertifiedOnly  bool `toml:"certified_only" help:"delegate only to members whose node or agent the community certified"`
	Auditor        bool `toml:"auditor" help:"re-run a sample of deterministic tasks on another provider and attest whether the outputs match"`
	AuditSample    int  `toml:"audit_sample" help:"share of eligible tasks an auditor re-runs, in thousandths"`
	AuditBudget    int  `toml:"audit_budget" help:"most audits an auditor runs per hour"`
}

// Log configures logging.
type Log struct {
	Level  string `toml:"level" help:"log level: debug, info, warn or error"`
	Format string `toml:"format" help:"log format: text or json"`
}

// Default is the configuration of a new home node.
func Default() Config {
	return Config{
		Profile: ProfileDefault,
		P2P: P2P{
			Listen: []string{
				"/ip4/0.0.0.0/tcp/4242",
				"/ip4/0.0.0.0/udp/4242/quic-v1",
				"/ip6/::/tcp/4242",
				"/ip6/::/udp/4242/quic-v1",
			},
			Announce:    []string{},
			Bootstrap:   []string{},
			NATPortMap:  true,
			MDNS:        true,
			DHT:         "auto",
			RelayClient: true,
			RelayServe:  true,
		},
		API: API{Listen: "127.0.0.1:4243"},
		Log: Log{Level: "info", Format: "text"},
		Trust: Trust{Feedback: true, ScoreCompleted: 900, ScoreFailed: 200, ScoreTimeout: 100,
			AuditSample: 100, AuditBudget: 60},
	}
}

// ErrUnknownKey is returned for a key that is not in the table.
var ErrUnknownKey = errors.New("unknown config key")

// Key describes one setting.
type Key struct {
	Name string // "p2p.listen"
	Help string
	kind reflect.Kind
	path []int
}

// Env is the environment variable of the key.
func (k Key) Env() string {
	return "AGORA_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(k.Name))
}

// Flag is the command-line flag of the key, without dashes.
func (k Key) Flag() string { return strings.NewReplacer(".", "-", "_", "-").Replace(k.Name) }

// IsList reports whether the key holds a list (comma-separated on the
// command line and in the environment).
func (k Key) IsList() bool { return k.kind == reflect.Slice }

// Keys lists every key, sorted by name.
func Keys() []Key {
	var keys []Key
	var walk func(t reflect.Type, prefix string, path []int)
	walk = func(t reflect.Type, prefix string, path []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := prefix + f.Tag.Get("toml")
			p := append(append([]int{}, path...), i)
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, name+".", p)
				continue
			}
			keys = append(keys, Key{Name: name, Help: f.Tag.Get("help"), kind: f.Type.Kind(), path: p})
		}
	}
	walk(reflect.TypeOf(Config{}), "", nil)
	sort.Slice(keys, func(i, j int) bool { return keys[i].Name < keys[j].Name })
	return keys
}

// Lookup finds a key by name.
func Lookup(name string) (Key, error) {
	for _, k := range Keys() {
		if k.Name == name {
			return k, nil
		}
	}
	return Key{}, fmt.Errorf("%w %q; `agora config keys` lists the valid keys", ErrUnknownKey, name)
}

// Get returns the value of a key as the text Set accepts.
func (c *Config) Get(name string) (string, error) {
	k, err := Lookup(name)
	if err != nil {
		return "", err
	}
	v := reflect.ValueOf(c).Elem().FieldByIndex(k.path)
	switch k.kind {
	case reflect.Slice:
		return strings.Join(v.Interface().([]string), ","), nil
	default:
		return fmt.Sprint(v.Interface()), nil
	}
}

// Set parses value into the key and validates the whole result; on any
// error c is unchanged.
func (c *Config) Set(name, value string) error {
	k, err := Lookup(name)
	if err != nil {
		return err
	}
	next := c.clone()
	v := reflect.ValueOf(&next).Elem().FieldByIndex(k.path)
	switch k.kind {
	case reflect.String:
		v.SetString(strings.TrimSpace(value))
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(value))
		if err != nil {
			return fmt.Errorf("%s must be true or false, not %q", name, value)
		}
		v.SetBool(b)
	case reflect.Int:
		n, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil {
			return fmt.Errorf("%s must be a whole number, not %q", name, value)
		}
		v.SetInt(int64(n))
	case reflect.Slice:
		list := []string{}
		for _, s := range strings.Split(value, ",") {
			if s = strings.TrimSpace(s); s != "" {
				list = append(list, s)
			}
		}
		v.Set(reflect.ValueOf(list))
	}
	if err := next.Validate(); err != nil {
		return err
	}
	*c = next
	return nil
}

func (c *Config) clone() Config {
	n := *c
	n.P2P.Listen = append([]string{}, c.P2P.Listen...)
	n.P2P.Announce = append([]string{}, c.P2P.Announce...)
	n.P2P.Bootstrap = append([]string{}, c.P2P.Bootstrap...)
	return n
}

// Validate checks every key; the error names the key and says what is
// accepted.
func (c *Config) Validate() error {
	oneOf := func(key, v string, allowed ...string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("%s must be one of %s, not %q", key, strings.Join(allowed, ", "), v)
	}
	addrs := func(key string, list []string, needPeer bool) error {
		for _, s := range list {
			// A comma separates the list's entries in `agora config
			// set`, AGORA_* variables and flags, so no entry may hold
			// one (a multiaddr's DNS name would take it).
			if strings.ContainsRune(s, ',') || strings.TrimSpace(s) != s {
				return fmt.Errorf("%s: %q cannot contain a comma or surrounding spaces", key, s)
			}
			a, err := ma.NewMultiaddr(s)
			if err != nil {
				return fmt.Errorf("%s: %q is not a valid multiaddr (for example /ip4/0.0.0.0/tcp/4242): %v", key, s, err)
			}
			if needPeer {
				if _, err := a.ValueForProtocol(ma.P_P2P); err != nil {
					return fmt.Errorf("%s: %q must end in /p2p/<peer-id>", key, s)
				}
			}
		}
		return nil
	}
	if err := oneOf("profile", c.Profile, ProfileDefault, ProfileLowPower, ProfileServer); err != nil {
		return err
	}
	if len(c.P2P.Listen) == 0 {
		return errors.New("p2p.listen needs at least one multiaddr, for example /ip4/0.0.0.0/tcp/4242")
	}
	if err := addrs("p2p.listen", c.P2P.Listen, false); err != nil {
		return err
	}
	if err := addrs("p2p.announce", c.P2P.Announce, false); err != nil {
		return err
	}
	if err := addrs("p2p.bootstrap", c.P2P.Bootstrap, true); err != nil {
		return err
	}
	if err := oneOf("p2p.dht", c.P2P.DHT, "auto", "client", "server", "off"); err != nil {
		return err
	}
	if c.P2P.ConnLow < 0 || c.P2P.ConnHigh < 0 || c.P2P.MaxMemoryMB < 0 {
		return errors.New("p2p.conn_low, p2p.conn_high and p2p.max_memory_mb cannot be negative")
	}
	if c.P2P.ConnHigh != 0 && c.P2P.ConnLow > c.P2P.ConnHigh {
		return fmt.Errorf("p2p.conn_low (%d) must not be above p2p.conn_high (%d)", c.P2P.ConnLow, c.P2P.ConnHigh)
	}
	if c.P2P.MaxMemoryMB != 0 && c.P2P.MaxMemoryMB < 32 {
		return fmt.Errorf("p2p.max_memory_mb must be at least 32, not %d", c.P2P.MaxMemoryMB)
	}
	host, port, err := net.SplitHostPort(c.API.Listen)
	if err != nil {
		return fmt.Errorf("api.listen must be host:port, for example 127.0.0.1:4243, not %q", c.API.Listen)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("api.listen has a bad port %q", port)
	}
	if host != "localhost" && net.ParseIP(host) == nil {
		return fmt.Errorf("api.listen must use an IP address or localhost, not %q", host)
	}
	for _, k := range []struct {
		key      string
		v        int
		min, max int
	}{
		{"trust.score_completed", c.Trust.ScoreCompleted, 0, 1000},
		{"trust.score_failed", c.Trust.ScoreFailed, 0, 1000},
		{"trust.score_timeout", c.Trust.ScoreTimeout, 0, 1000},
		{"trust.audit_sample", c.Trust.AuditSample, 0, 1000},
		{"trust.audit_budget", c.Trust.AuditBudget, 0, 3600},
	} {
		if k.v < k.min || k.v > k.max {
			return fmt.Errorf("%s must be between %d and %d, not %d", k.key, k.min, k.max, k.v)
		}
	}
	if err := oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error"); err != nil {
		return err
	}
	return oneOf("log.format", c.Log.Format, "text", "json")
}

// Parse reads config.toml text. Unknown keys are errors, so a typo is not
// silently ignored.
func Parse(data []byte) (Config, error) {
	c := Default()
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		var sm *toml.StrictMissingError
		if errors.As(err, &sm) {
			return Config{}, fmt.Errorf("config.toml has unknown keys: %s", sm.String())
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return Config{}, fmt.Errorf("config.toml line %d column %d: %s", row, col, de.Error())
		}
		return Config{}, fmt.Errorf("config.toml: %w", err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("config.toml: %w", err)
	}
	return c, nil
}

// Marshal renders the config as config.toml text.
func (c *Config) Marshal() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Agora node configuration. `agora config keys` explains every key;\n# each is also an AGORA_* environment variable and a flag.\n")
	enc := toml.NewEncoder(&b)
	enc.SetIndentTables(false)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Load reads path.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return Parse(data)
}

// Save writes path atomically (temp file and rename), so a crash never
// leaves half a config.
func (c *Config) Save(path string) error {
	if err := c.Validate(); err != nil {
		return err
	}
	data, err := c.Marshal()
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// ApplyEnv overrides keys from AGORA_* variables found through lookup
// (os.LookupEnv in production). An empty variable counts as unset.
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) error {
	for _, k := range Keys() {
		if v, ok := lookup(k.Env()); ok && strings.TrimSpace(v) != "" {
			if err := c.Set(k.Name, v); err != nil {
				return fmt.Errorf("environment variable %s: %w", k.Env(), err)
			}
		}
	}
	return nil
}
