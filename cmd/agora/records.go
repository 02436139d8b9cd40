package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agora-p2p/agora/node/api"
)

func newAttestCmd(g *globals) *cobra.Command {
	var subjectType, predicate, verdict, evidence, community, digest string
	var claims []string
	var expires time.Duration
	cmd := &cobra.Command{
		Use:   "attest SUBJECT_ID",
		Short: "Publish a signed attestation about a peer, agent, skill, code, receipt or record",
		Long: "Publish a signed attestation: your statement, as an auditor, that a subject passes, fails or\n" +
			"warns on a predicate (an audit type such as agora:audit/deterministic/v1). Every member gets it.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b := map[string]any{
				"subject":   map[string]any{"type": subjectType, "id": args[0]},
				"predicate": predicate,
				"verdict":   verdict,
			}
			if digest != "" {
				b["subject"].(map[string]any)["digest"] = digest
			}
			if len(claims) > 0 {
				m := map[string]any{}
				for _, kv := range claims {
					k, v, ok := strings.Cut(kv, "=")
					if !ok || k == "" {
						return fmt.Errorf("--claim takes key=value, not %q", kv)
					}
					m[k] = v
				}
				b["claims"] = m
			}
			if evidence != "" {
				text, err := argOrFile(evidence)
				if err != nil {
					return err
				}
				b["evidence"] = text
			}
			if expires < 0 {
				return fmt.Errorf("--expires must be a positive duration such as 720h")
			}
			if expires > 0 {
				b["expires"] = time.Now().Add(expires).UnixMilli()
			}
			return publish(cmd, g, community, "attestation", b)
		},
	}
	cmd.Flags().StringVar(&subjectType, "subject-type", "", "what the subject is: peer, agent, skill, code, receipt or record")
	cmd.Flags().StringVar(&predicate, "predicate", "", "what was checked, as a URI, e.g. agora:audit/deterministic/v1")
	cmd.Flags().StringVar(&verdict, "verdict", "", "pass, fail or warn")
	cmd.Flags().StringArrayVar(&claims, "claim", nil, "a finding as key=value (repeatable)")
	cmd.Flags().StringVar(&evidence, "evidence", "", "free text, or @FILE (at most 4 KiB)")
	cmd.Flags().StringVar(&digest, "digest", "", "hex multihash pinning the exact content attested")
	cmd.Flags().DurationVar(&expires, "expires", 0, "how long the attestation counts, e.g. 720h (default: no expiry)")
	cmd.Flags().StringVar(&community, "community", "", "community ID (default: the node's only community)")
	for _, f := range []string{"subject-type", "predicate", "verdict"} {
		cmd.MarkFlagRequired(f)
	}
	return cmd
}

func newRevokeCmd(g *globals) *cobra.Command {
	var reason, community string
	cmd := &cobra.Command{
		Use:   "revoke CID",
		Short: "Revoke one of your own records (it stays stored, marked revoked)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b := map[string]any{"target": args[0]}
			if reason != "" {
				b["reason"] = reason
			}
			return publish(cmd, g, community, "revocation", b)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for people")
	cmd.Flags().StringVar(&community, "community", "", "community ID (default: the node's only community)")
	return cmd
}

func publish(cmd *cobra.Command, g *globals, community, kind string, b map[string]any) error {
	ctx, c, done, err := g.connect(cmd)
	if err != nil {
		return err
	}
	defer done()
	res, err := c.Publish(ctx, api.PublishRequest{Community: community, Kind: kind, Body: b})
	if err != nil {
		return err
	}
	if g.json {
		return printJSON(cmd.OutOrStdout(), res)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Published %s %s.\n", kind, res.CID)
	return nil
}

func newRecordsCmd(g *globals) *cobra.Command {
	var q api.RecordQuery
	cmd := &cobra.Command{
		Use:   "records",
		Short: "List records of a community, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			recs, err := c.Records(ctx, q)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), recs)
			}
			if len(recs) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "No records.")
				return nil
			}
			rows := [][]string{}
			for _, r := range recs {
				state := ""
				if r.Revoked {
					state = "revoked"
				}
				rows = append(rows, []string{r.CID, r.Kind, shortID(r.Author),
					time.UnixMilli(r.Created).Format(time.DateTime), summary(r), state})
			}
			table(cmd.OutOrStdout(), []string{"CID", "KIND", "AUTHOR", "CREATED", "ABOUT", ""}, rows)
			return nil
		},
	}
	cmd.Flags().StringVar(&q.Kind, "kind", "", "only records of this kind (attestation, revocation, ...)")
	cmd.Flags().StringVar(&q.Author, "author", "", "only records by this peer ID")
	cmd.Flags().StringVar(&q.Subject, "subject", "", "only records about this subject (type:id, or a revoked record's CID)")
	cmd.Flags().StringVar(&q.Community, "community", "", "community ID (default: the node's only community)")
	cmd.Flags().IntVar(&q.Limit, "limit", 0, "at most this many (default 100)")
	return cmd
}

// summary says in a few words what a record is about.
func summary(r api.RecordView) string {
	switch r.Kind {
	case "attestation":
		s, _ := r.Body["subject"].(map[string]any)
		return fmt.Sprintf("%v %v:%v (%v)", r.Body["verdict"], s["type"], shortID(fmt.Sprint(s["id"])), r.Body["predicate"])
	case "revocation":
		return fmt.Sprintf("revokes %v", r.Body["target"])
	}
	return ""
}

func newRecordCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "record CID",
		Short: "Show one record, verified",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			r, err := c.Record(ctx, args[0])
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), r)
			}
			revoked := "no"
			if r.Revoked {
				revoked = "yes, by " + r.RevokedBy
			}
			fields(cmd.OutOrStdout(), "CID", r.CID, "kind", r.Kind, "community", r.Community, "author", r.Author,
				"created", time.UnixMilli(r.Created).Format(time.RFC3339), "signature", "verified",
				"revoked", revoked)
			fmt.Fprintln(cmd.OutOrStdout())
			return printJSON(cmd.OutOrStdout(), r.Body)
		},
	}
}
