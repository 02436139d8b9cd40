package main

import (
	"fmt"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/agora-p2p/agora/node/config"
	"github.com/agora-p2p/agora/node/repo"
)

func peerIDOf(k crypto.PrivKey) (string, error) {
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

// newConfigCmd edits config.toml directly; the daemon reads it at start, so
// a change takes effect on the next start.
func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Read and change the node's settings (config.toml)",
	}
	load := func() (config.Config, string, error) {
		dir := g.repoDir()
		if !repo.IsInitialised(dir) {
			return config.Config{}, "", fmt.Errorf("%s is not an Agora repo; run `agora init --repo %s` first", dir, dir)
		}
		p := filepath.Join(dir, config.FileName)
		c, err := config.Load(p)
		return c, p, err
	}
	get := &cobra.Command{
		Use:   "get KEY",
		Short: "Print a setting",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := load()
			if err != nil {
				return err
			}
			v, err := c.Get(args[0])
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), map[string]string{"key": args[0], "value": v})
			}
			fmt.Fprintln(cmd.OutOrStdout(), v)
			return nil
		},
	}
	set := &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "Change a setting (lists are comma-separated); takes effect when the daemon next starts",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, p, err := load()
			if err != nil {
				return err
			}
			if err := c.Set(args[0], args[1]); err != nil {
				return err
			}
			if err := c.Save(p); err != nil {
				return err
			}
			v, _ := c.Get(args[0])
			if g.json {
				return printJSON(cmd.OutOrStdout(), map[string]string{"key": args[0], "value": v})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s = %s (restart the daemon to apply)\n", args[0], v)
			return nil
		},
	}
	keys := &cobra.Command{
		Use:   "keys",
		Short: "List every setting with its environment variable and help",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.json {
				type row struct{ Key, Env, Flag, Help string }
				out := []row{}
				for _, k := range config.Keys() {
					out = append(out, row{k.Name, k.Env(), "--" + k.Flag(), k.Help})
				}
				return printJSON(cmd.OutOrStdout(), out)
			}
			rows := [][]string{}
			for _, k := range config.Keys() {
				rows = append(rows, []string{k.Name, k.Env(), k.Help})
			}
			table(cmd.OutOrStdout(), []string{"KEY", "ENVIRONMENT", "MEANING"}, rows)
			return nil
		},
	}
	show := &cobra.Command{
		Use:   "show",
		Short: "Print every setting and its value",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := load()
			if err != nil {
				return err
			}
			out := map[string]string{}
			rows := [][]string{}
			for _, k := range config.Keys() {
				v, _ := c.Get(k.Name)
				out[k.Name] = v
				rows = append(rows, []string{k.Name, v})
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), out)
			}
			table(cmd.OutOrStdout(), []string{"KEY", "VALUE"}, rows)
			return nil
		},
	}
	cmd.AddCommand(get, set, keys, show)
	return cmd
}
