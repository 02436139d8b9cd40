package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/agora-p2p/agora/node"
	"github.com/agora-p2p/agora/node/config"
	"github.com/agora-p2p/agora/node/repo"
)

func nodeVersion() string { return node.Version }

func readAllLimited(r io.Reader) ([]byte, error) {
	const max = 1 << 20
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if len(b) > max {
		return nil, fmt.Errorf("input is larger than %d bytes", max)
	}
	return b, nil
}

// keyFlags registers one flag per config key (--p2p-listen, --api-listen,
// ...) and applies the ones given, after the environment.
type keyFlags struct {
	vals map[string]*string
}

func addKeyFlags(fs *pflag.FlagSet) *keyFlags {
	kf := &keyFlags{vals: map[string]*string{}}
	for _, k := range config.Keys() {
		help := k.Help + " (env " + k.Env() + ")"
		if k.IsList() {
			help += "; comma-separated"
		}
		kf.vals[k.Name] = fs.String(k.Flag(), "", help)
	}
	return kf
}

func (kf *keyFlags) apply(fs *pflag.FlagSet, c *config.Config) error {
	for _, k := range config.Keys() {
		if fs.Changed(k.Flag()) {
			if err := c.Set(k.Name, *kf.vals[k.Name]); err != nil {
				return fmt.Errorf("--%s: %w", k.Flag(), err)
			}
		}
	}
	return nil
}

// initOpts are the short flags of `agora init` and `agora up`.
type initOpts struct {
	listen []string
	keys   *keyFlags
}

// addInitFlags adds the key flags (--profile among them) and the short,
// repeatable --listen.
func addInitFlags(cmd *cobra.Command) *initOpts {
	o := &initOpts{}
	cmd.Flags().StringArrayVar(&o.listen, "listen", nil, "multiaddr to listen on (repeatable; port 0 picks a free port)")
	o.keys = addKeyFlags(cmd.Flags())
	return o
}

// apply sets the flags given on the command line over c.
func (o *initOpts) apply(cmd *cobra.Command, g *globals, c *config.Config) error {
	if err := o.keys.apply(cmd.Flags(), c); err != nil {
		return err
	}
	if len(o.listen) > 0 {
		if err := c.Set("p2p.listen", strings.Join(o.listen, ",")); err != nil {
			return fmt.Errorf("--listen: %w", err)
		}
	}
	if g.api != "" {
		if err := c.Set("api.listen", g.api); err != nil {
			return fmt.Errorf("--api: %w", err)
		}
	}
	return nil
}

// initConfig builds the config of a new repo: defaults, then environment,
// then flags.
func (o *initOpts) initConfig(cmd *cobra.Command, g *globals) (config.Config, error) {
	c := config.Default()
	if err := c.ApplyEnv(os.LookupEnv); err != nil {
		return c, err
	}
	return c, o.apply(cmd, g, &c)
}

func newInitCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a node repo: config, identity key, API token and datastore",
		Args:  cobra.NoArgs,
	}
	o := addInitFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := o.initConfig(cmd, g)
		if err != nil {
			return err
		}
		dir := g.repoDir()
		key, err := repo.Init(dir, c)
		if err != nil {
			return err
		}
		id, err := peerIDOf(key)
		if err != nil {
			return err
		}
		if g.json {
			return printJSON(cmd.OutOrStdout(), map[string]string{"peer_id": id, "repo": dir})
		}
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "Initialised an Agora node in %s.\n", dir)
		fields(w, "peer ID", id, "profile", c.Profile)
		fmt.Fprintf(w, "\nNext:\n  agora daemon --repo %s        start the node\n  agora community create NAME   start a community, or\n  agora community join INVITE   join one\n", dir)
		return nil
	}
	return cmd
}

func newDaemonCmd(g *globals, up bool) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the node until interrupted",
		Args:  cobra.NoArgs,
	}
	if up {
		cmd.Use = "up"
		cmd.Short = "Initialise the repo if needed, then run the node (the home set-up in one command)"
	}
	o := addInitFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		dir := g.repoDir()
		if up && !repo.IsInitialised(dir) {
			c, err := o.initConfig(cmd, g)
			if err != nil {
				return err
			}
			if _, err := repo.Init(dir, c); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Initialised a new Agora node in %s.\n", dir)
		}
		return runDaemon(cmd, g, o)
	}
	return cmd
}

func runDaemon(cmd *cobra.Command, g *globals, o *initOpts) error {
	r, err := repo.Open(g.repoDir())
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.Config.ApplyEnv(os.LookupEnv); err != nil {
		return err
	}
	if err := o.apply(cmd, g, &r.Config); err != nil {
		return err
	}
	log := newLogger(os.Stderr, r.Config.Log.Level, r.Config.Log.Format)
	slog.SetDefault(log)
	tuneGC(r.Config.Profile)

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	began := time.Now()
	n, err := node.Start(ctx, r, log)
	if err != nil {
		return err
	}
	// Loading the registry's trust and governance state decodes every
	// record once; the garbage of that (tens of MB with 10,000 records)
	// would stay in the process's RSS for minutes. Hand it back now: a
	// home node is idle most of its life. (The daemon's call, not the
	// node's: a process running many nodes would pay a full collection
	// of all of them per start.)
	debug.FreeOSMemory()
	go trimWhenIdle(ctx, r.Config.Profile)
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "Agora %s\n", node.Version)
	fmt.Fprintf(w, "peer ID: %s\n", n.Host.ID())
	fmt.Fprintln(w, "listening on:")
	for _, a := range n.Host.Network().ListenAddresses() {
		fmt.Fprintf(w, "  %s\n", a)
	}
	fmt.Fprintf(w, "API: http://%s\n", n.APIAddr)
	fmt.Fprintf(w, "Agora daemon ready in %d ms (stop with Ctrl-C)\n", time.Since(began).Milliseconds())
	<-ctx.Done()
	fmt.Fprintln(w, "Shutting down...")
	if err := n.Close(); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	fmt.Fprintln(w, "Stopped.")
	return nil
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// tuneGC keeps the daemon's heap closer to what it uses than Go's default
// (a heap twice the live data): a home node idles most of its life, and its
// live data is mostly badger's caches. GOGC in the environment wins.
func tuneGC(profile string) {
	if os.Getenv("GOGC") != "" {
		return
	}
	switch profile {
	case config.ProfileServer:
		return // Go's default: memory for less GC work
	case config.ProfileLowPower:
		debug.SetGCPercent(25)
	default:
		debug.SetGCPercent(50)
	}
}
