package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/agora-p2p/agora/node/client"
	"github.com/agora-p2p/agora/node/repo"
)

func (g *globals) repoDir() string {
	if g.repo != "" {
		return g.repo
	}
	return repo.DefaultPath()
}

// client connects to the daemon of the repo (or to --api with the repo's
// token).
func (g *globals) client(opts ...client.Option) (*client.Client, error) {
	if g.api == "" {
		return client.FromRepo(g.repoDir(), opts...)
	}
	tok, err := os.ReadFile(g.repoDir() + "/" + repo.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("cannot read the API token of repo %s: %w; pass --repo of the node you address with --api", g.repoDir(), err)
	}
	base := g.api
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return client.New(base, strings.TrimSpace(string(tok)), opts...), nil
}

// connect returns the daemon's client and a bounded context for one
// command; call done when the command ends.
func (g *globals) connect(cmd *cobra.Command) (ctx context.Context, c *client.Client, done context.CancelFunc, err error) {
	if c, err = g.client(); err != nil {
		return nil, nil, nil, err
	}
	ctx, done = context.WithTimeout(cmd.Context(), 60*time.Second)
	return ctx, c, done, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints aligned columns.
func table(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// field prints "label: value" lines aligned.
func fields(w io.Writer, kv ...string) {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[i], kv[i+1])
	}
	tw.Flush()
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, "\n\t")
}

func shortID(s string) string {
	if len(s) <= 16 {
		return s
	}
	return s[:8] + "…" + s[len(s)-6:]
}

// query runs one API call for a command and prints its answer: as JSON with
// --json, else through human. It is the shape of most commands; call is
// often a method expression such as (*client.Client).Agents.
func query[T any](cmd *cobra.Command, g *globals, call func(*client.Client, context.Context) (T, error), human func(io.Writer, T) error) error {
	ctx, c, done, err := g.connect(cmd)
	if err != nil {
		return err
	}
	defer done()
	v, err := call(c, ctx)
	if err != nil {
		return err
	}
	if g.json {
		return printJSON(cmd.OutOrStdout(), v)
	}
	return human(cmd.OutOrStdout(), v)
}

// longCall prepares a command that waits for work to end (ask, run): its
// JSON input (text or @FILE), a client whose requests may last the whole
// timeout, and a context a little longer than it.
func (g *globals) longCall(cmd *cobra.Command, input string, timeout time.Duration) (in string, c *client.Client, ctx context.Context, done context.CancelFunc, err error) {
	if in, err = argOrFile(input); err != nil {
		return "", nil, nil, nil, err
	}
	if !json.Valid([]byte(in)) {
		return "", nil, nil, nil, fmt.Errorf("--input is not JSON: %s", clipText(in, 80))
	}
	if timeout <= 0 {
		return "", nil, nil, nil, fmt.Errorf("--timeout must be positive, e.g. 30s")
	}
	if c, err = g.client(client.WithTimeout(timeout + 30*time.Second)); err != nil {
		return "", nil, nil, nil, err
	}
	ctx, done = context.WithTimeout(cmd.Context(), timeout+time.Minute)
	return in, c, ctx, done, nil
}
