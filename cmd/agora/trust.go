package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/client"
)

// parseScore reads a rating: whole thousandths, so 900 is 90%.
func parseScore(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > 1000 {
		return 0, fmt.Errorf("SCORE is a whole number from 0 to 1000 (thousandths), not %q; e.g. 900 for 90%%", s)
	}
	return n, nil
}

// parsePeer checks a peer ID and returns it in its canonical form, the one
// the node keys peers by.
func parsePeer(s string) (string, error) {
	id, err := peer.Decode(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a peer ID (they look like 12D3KooW…; `agora id` shows a node's own): %w", s, err)
	}
	return id.String(), nil
}

func newRateCmd(g *globals) *cobra.Command {
	var comment string
	cmd := &cobra.Command{
		Use:   "rate TASK_ID SCORE",
		Short: "Rate a task this node asked another member to run, from 0 to 1000 (thousandths)",
		Long: "Rate a task this node asked another member to run: SCORE is in thousandths, 1000 for perfect,\n" +
			"0 for useless or wrong. The rating is signed feedback every member gets; it feeds the\n" +
			"executor's reputation. Rating a task again replaces your earlier rating.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			score, err := parseScore(args[1])
			if err != nil {
				return err
			}
			return query(cmd, g, func(c *client.Client, ctx context.Context) (api.Rated, error) {
				return c.Rate(ctx, args[0], api.RateRequest{Score: score, Comment: comment})
			}, func(w io.Writer, r api.Rated) error {
				_, err := fmt.Fprintf(w, "Rated task %s %d/1000 (executor %s): feedback %s.\n", r.Task, r.Score, shortID(r.Executor), r.CID)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&comment, "comment", "", "why, for people")
	return cmd
}

func newTrustCmd(g *globals) *cobra.Command {
	listTrusted := func(cmd *cobra.Command, _ []string) error {
		return query(cmd, g, (*client.Client).TrustedPeers, printTrusted)
	}
	cmd := &cobra.Command{
		Use:   "trust",
		Short: "List the peers you trust; add or remove one (they seed your personal reputation)",
		Args:  cobra.NoArgs,
		RunE:  listTrusted,
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the peers you trust",
		Args:  cobra.NoArgs,
		RunE:  listTrusted,
	}
	add := &cobra.Command{
		Use:   "add PEER",
		Short: "Trust a peer: its ratings count most in your personal reputation",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parsePeer(args[0])
			if err != nil {
				return err
			}
			return query(cmd, g, func(c *client.Client, ctx context.Context) (api.TrustedPeer, error) {
				return c.AddTrustedPeer(ctx, id)
			}, func(w io.Writer, p api.TrustedPeer) error {
				_, err := fmt.Fprintf(w, "Trusting %s.\n", p.PeerID)
				return err
			})
		},
	}
	remove := &cobra.Command{
		Use:   "remove PEER",
		Short: "Stop trusting a peer",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parsePeer(args[0])
			if err != nil {
				return err
			}
			return query(cmd, g, func(c *client.Client, ctx context.Context) (map[string]string, error) {
				return map[string]string{"removed": id}, c.RemoveTrustedPeer(ctx, id)
			}, func(w io.Writer, _ map[string]string) error {
				_, err := fmt.Fprintf(w, "No longer trusting %s.\n", id)
				return err
			})
		},
	}
	cmd.AddCommand(list, add, remove)
	return cmd
}

func printTrusted(w io.Writer, ps []api.TrustedPeer) error {
	if len(ps) == 0 {
		_, err := fmt.Fprintln(w, "You trust no peers yet. Trust one with `agora trust add PEER`.")
		return err
	}
	rows := [][]string{}
	for _, p := range ps {
		rows = append(rows, []string{p.PeerID, time.UnixMilli(p.Added).Format(time.DateTime)})
	}
	table(w, []string{"PEER", "ADDED"}, rows)
	return nil
}

func newRepCmd(g *globals) *cobra.Command {
	var community, kind string
	cmd := &cobra.Command{
		Use:   "rep [PEER]",
		Short: "Show members' reputation, most trusted first (or one peer's)",
		Long: "Show members' reputation, most trusted first. The personal kind starts from the peers you\n" +
			"trust (`agora trust`); the community kind from the community's founders. TRUST is the\n" +
			"peer's share of all trust, LEVEL the same relative to the most trusted peer, in thousandths.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if kind != "personal" && kind != "community" {
				return fmt.Errorf("--kind is personal or community, not %q", kind)
			}
			var id string
			if len(args) == 1 {
				var err error
				if id, err = parsePeer(args[0]); err != nil {
					return err
				}
			}
			return query(cmd, g, func(c *client.Client, ctx context.Context) ([]api.RepEntry, error) {
				return c.Reputation(ctx, community, kind, id)
			}, printRep)
		},
	}
	cmd.Flags().StringVar(&community, "community", "", "community ID (default: the node's only community)")
	cmd.Flags().StringVar(&kind, "kind", "personal", "personal (from the peers you trust) or community (from the founders)")
	return cmd
}

func printRep(w io.Writer, rs []api.RepEntry) error {
	if len(rs) == 0 {
		_, err := fmt.Fprintln(w, "No reputation yet: it grows as members rate the tasks they asked for (`agora rate`).")
		return err
	}
	rows := [][]string{}
	for _, r := range rs {
		rank := "-"
		if r.Rank > 0 {
			rank = strconv.Itoa(r.Rank)
		}
		var marks []string
		if r.Seed {
			marks = append(marks, "seed")
		}
		if r.Distrusted {
			marks = append(marks, "distrusted")
		}
		rows = append(rows, []string{rank, r.PeerID, fmt.Sprintf("%.1f%%", 100*r.Trust),
			strconv.FormatInt(r.Level, 10), strconv.Itoa(r.Feedback), strings.Join(marks, ", ")})
	}
	table(w, []string{"RANK", "PEER", "TRUST", "LEVEL", "FEEDBACK", ""}, rows)
	return nil
}

func newCertsCmd(g *globals) *cobra.Command {
	var community string
	cmd := &cobra.Command{
		Use:   "certs [SUBJECT]",
		Short: "Show which subjects the community certifies, and why",
		Long: "Show which subjects (agents, nodes, code...) the community certifies from its auditors'\n" +
			"attestations, and why. SUBJECT is type:id, as in `agora records --subject`.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var subject string
			if len(args) == 1 {
				subject = args[0]
			}
			return query(cmd, g, func(c *client.Client, ctx context.Context) ([]api.Certification, error) {
				return c.Certifications(ctx, community, subject)
			}, printCerts)
		},
	}
	cmd.Flags().StringVar(&community, "community", "", "community ID (default: the node's only community)")
	return cmd
}

func printCerts(w io.Writer, cs []api.Certification) error {
	if len(cs) == 0 {
		_, err := fmt.Fprintln(w, "No attested subjects. Auditors publish attestations with `agora attest`.")
		return err
	}
	rows := [][]string{}
	for _, c := range cs {
		certified := "no"
		if c.Certified {
			certified = "yes"
		}
		rows = append(rows, []string{c.Subject, certified, strconv.Itoa(c.Attestations)})
	}
	// Align the subjects as one table, then put each one's reasons below it.
	var buf bytes.Buffer
	table(&buf, []string{"SUBJECT", "CERTIFIED", "ATTESTATIONS"}, rows)
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	fmt.Fprintln(w, lines[0])
	for i, c := range cs {
		fmt.Fprintln(w, lines[i+1])
		for _, r := range c.Reasons {
			fmt.Fprintln(w, "    "+r)
		}
	}
	return nil
}
