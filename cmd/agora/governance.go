package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/client"
	"github.com/agora-p2p/agora/protocol/body"
	// Renamed: the e2e tests of package main have a func community.
	pcommunity "github.com/agora-p2p/agora/protocol/community"
)

// proposalStatuses are the statuses `agora proposals --status` filters on.
var proposalStatuses = []string{"pending", "open", "passed", "rejected", "no-quorum", "invalid"}

// parseThousandths reads a share: whole thousandths ("500") or a percentage
// with at most one decimal ("50%", "12.5%"), between min and 1000.
func parseThousandths(flag, s string, min int64) (int64, error) {
	bad := fmt.Errorf("%s is whole thousandths from %d to 1000 or a percentage, not %q; e.g. 500 or 50%%", flag, min, s)
	var n int64
	if pct, ok := strings.CutSuffix(s, "%"); ok {
		whole, frac, _ := strings.Cut(pct, ".")
		if len(frac) > 1 || !allDigits(whole) || (frac != "" && !allDigits(frac)) {
			return 0, bad
		}
		w, err := strconv.ParseInt(whole, 10, 64)
		if err != nil || w > 100 {
			return 0, bad
		}
		n = 10 * w
		if frac != "" {
			n += int64(frac[0] - '0')
		}
	} else {
		var err error
		if n, err = strconv.ParseInt(s, 10, 64); err != nil {
			return 0, bad
		}
	}
	if n < min || n > 1000 {
		return 0, bad
	}
	return n, nil
}

func allDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// parseVotingPeriod reads a Go duration that may start with whole days
// ("7d", "1d12h", "90m") and returns it in seconds.
func parseVotingPeriod(s string) (int64, error) {
	bad := fmt.Errorf("--duration is %v to %dd, such as 90m, 48h or 7d, not %q",
		body.MinVotingPeriod, body.MaxVotingPeriod/(24*time.Hour), s)
	var d time.Duration
	rest := s
	// No Go duration unit contains a "d", so one can only mean days.
	if days, after, ok := strings.Cut(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if !allDigits(days) || err != nil || n > 1000 {
			return 0, bad
		}
		d, rest = time.Duration(n)*24*time.Hour, after
	}
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil || r < 0 {
			return 0, bad
		}
		d += r
	}
	if d < body.MinVotingPeriod || d > body.MaxVotingPeriod {
		return 0, bad
	}
	if d%time.Second != 0 {
		return 0, fmt.Errorf("--duration is counted in whole seconds, not %q", s)
	}
	return int64(d / time.Second), nil
}

// parseStart reads a time as RFC 3339 or unix milliseconds.
func parseStart(s string) (int64, error) {
	if allDigits(s) {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil || ms <= 0 {
			return 0, fmt.Errorf("--start %q is not a time in unix milliseconds", s)
		}
		if ms < 1e11 {
			return 0, fmt.Errorf("--start %s looks like unix seconds; give milliseconds (%s000) or RFC 3339 (2006-01-02T15:04:05Z)", s, s)
		}
		return ms, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil || t.UnixMilli() <= 0 {
		return 0, fmt.Errorf("--start is RFC 3339 (2006-01-02T15:04:05Z) or unix milliseconds, not %q", s)
	}
	return t.UnixMilli(), nil
}

// parseChoices splits "a,b,c" and checks what a proposal needs of its
// choices.
func parseChoices(s string) ([]string, error) {
	var choices []string
	for c := range strings.SplitSeq(s, ",") {
		c = strings.TrimSpace(c)
		switch {
		case c == "":
			return nil, fmt.Errorf("--choices has an empty choice in %q; separate the choices with commas, e.g. yes,no", s)
		case utf8.RuneCountInString(c) > body.MaxChoiceLen:
			return nil, fmt.Errorf("the choice %q is longer than %d characters", clipText(c, 20), body.MaxChoiceLen)
		case slices.Contains(choices, c):
			return nil, fmt.Errorf("the choice %q is listed twice", c)
		}
		choices = append(choices, c)
	}
	if n := len(choices); n < body.MinChoices || n > body.MaxChoices {
		return nil, fmt.Errorf("a proposal needs %d to %d choices, not %d; e.g. --choices yes,no", body.MinChoices, body.MaxChoices, n)
	}
	return choices, nil
}

// parsePolicyValues reads --policy KEY=VALUE flags; keys may be dotted or in
// their wire form, and each value must be in its key's range.
func parsePolicyValues(kvs []string) (map[string]int64, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]int64{}
	for _, kv := range kvs {
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--policy takes KEY=VALUE, not %q; e.g. --policy vote.quorum=300 (`agora policy keys` lists the keys)", kv)
		}
		k, err := pcommunity.LookupPolicyKey(strings.TrimSpace(name))
		if err != nil {
			return nil, err
		}
		v, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("the value of %s must be a whole number, not %q", k.Name, value)
		}
		if v < k.Min || v > k.Max {
			return nil, fmt.Errorf("%s must be between %d and %d, not %d", k.Name, k.Min, k.Max, v)
		}
		if _, dup := out[k.Name]; dup {
			return nil, fmt.Errorf("--policy sets %s twice", k.Name)
		}
		out[k.Name] = v
	}
	return out, nil
}

// resolveProposal turns what the user typed into a proposal ID: a full ID
// as is, else the one proposal it names by prefix or in the short form
// `agora proposals` prints.
func resolveProposal(ctx context.Context, c *client.Client, communityID, s string) (string, error) {
	if _, err := cid.Decode(s); err == nil || strings.TrimSpace(s) == "" {
		return s, nil
	}
	ps, err := c.Proposals(ctx, communityID, "")
	if err != nil {
		return "", err
	}
	head, tail, short := strings.Cut(s, "…")
	if !short {
		head, tail, _ = strings.Cut(s, "...")
	}
	var found []string
	for _, p := range ps {
		if strings.HasPrefix(p.ID, head) && strings.HasSuffix(p.ID, tail) {
			found = append(found, p.ID)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no proposal has the ID %q; `agora proposals` lists them", s)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%q matches %d proposals; give more of the ID", s, len(found))
}

func newProposeCmd(g *globals) *cobra.Command {
	var title, text, choices, method, weighting, quorum, threshold, duration, start, action, communityID string
	cmd := &cobra.Command{
		Use:   "propose --title TITLE --choices A,B[,...]",
		Short: "Put a question to the community's vote, optionally with an action that passing applies",
		Long: "Put a question to the community's vote. Unset options take the community policy's values\n" +
			"(`agora policy`). --quorum and --threshold are thousandths (500) or percentages (50%).\n" +
			"With --action, the action applies when the proposal passes with its first choice:\n" +
			"  set-policy KEY=VALUE, ban PEER, unban PEER, add-founder PEER, remove-founder PEER,\n" +
			"  adopt-charter CID, certify TYPE:ID, decertify TYPE:ID",
		Example: "  agora propose --title \"Require 2 attestations\" --choices yes,no --action \"set-policy certify.min_attestations=2\"\n" +
			"  agora propose --title \"Next meetup\" --body @meetup.md --choices mon,wed,fri --method ranked --duration 3d",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := api.ProposeRequest{Community: communityID, Title: strings.TrimSpace(title), Method: method, Weighting: weighting}
			if req.Title == "" {
				return errors.New("a proposal needs a --title")
			}
			if n := utf8.RuneCountInString(req.Title); n > body.MaxTitleLen {
				return fmt.Errorf("--title is %d characters; at most %d fit", n, body.MaxTitleLen)
			}
			var err error
			if req.Choices, err = parseChoices(choices); err != nil {
				return err
			}
			if text != "" {
				if req.Body, err = argOrFile(text); err != nil {
					return fmt.Errorf("--body: %w", err)
				}
				if len(req.Body) > body.MaxProposalBodyBytes {
					return fmt.Errorf("--body is %d bytes; at most %d fit", len(req.Body), body.MaxProposalBodyBytes)
				}
			}
			switch method {
			case "", body.MethodSingle, body.MethodApproval, body.MethodRanked, body.MethodQuadratic:
			default:
				return fmt.Errorf("--method is single, approval, ranked or quadratic, not %q", method)
			}
			switch weighting {
			case "", body.WeightMember, body.WeightTrust:
			default:
				return fmt.Errorf("--weighting is member or trust, not %q", weighting)
			}
			if quorum != "" {
				q, err := parseThousandths("--quorum", quorum, 0)
				if err != nil {
					return err
				}
				req.Quorum = &q
			}
			if threshold != "" {
				th, err := parseThousandths("--threshold", threshold, 1)
				if err != nil {
					return err
				}
				req.Threshold = &th
			}
			if duration != "" {
				if req.DurationS, err = parseVotingPeriod(duration); err != nil {
					return err
				}
			}
			if start != "" {
				if req.StartMS, err = parseStart(start); err != nil {
					return err
				}
			}
			if action != "" {
				a, err := body.ParseAction(action)
				if err != nil {
					return fmt.Errorf("--action: %w", err)
				}
				req.Action = a.String()
			}
			return query(cmd, g, func(c *client.Client, ctx context.Context) (api.Proposed, error) {
				return c.Propose(ctx, req)
			}, func(w io.Writer, p api.Proposed) error {
				_, err := fmt.Fprintf(w, "Proposed %s.\nVote with `agora vote %s CHOICE`; follow the count with `agora tally %s`.\n", p.ID, p.ID, p.ID)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&title, "title", "", "the question, one line")
	f.StringVar(&text, "body", "", "the full text in Markdown, or @FILE")
	f.StringVar(&choices, "choices", "", "what voters pick from, comma-separated; with --action the first one applies it")
	f.StringVar(&method, "method", "", "single, approval, ranked or quadratic (default single)")
	f.StringVar(&weighting, "weighting", "", "member (one member, one vote) or trust (by community trust) (default member)")
	f.StringVar(&quorum, "quorum", "", "share of the eligible weight that must vote: thousandths or a percentage (default: the policy's)")
	f.StringVar(&threshold, "threshold", "", "share of the cast weight the winner needs: thousandths or a percentage (default: the policy's)")
	f.StringVar(&duration, "duration", "", "how long voting lasts, e.g. 90m, 48h, 7d (default: the policy's)")
	f.StringVar(&start, "start", "", "when voting opens, RFC 3339 or unix ms (default now)")
	f.StringVar(&action, "action", "", "what passing with the first choice does, e.g. \"set-policy vote.quorum=300\" or \"ban PEER\"")
	f.StringVar(&communityID, "community", "", "community ID (default: the node's only community)")
	cmd.MarkFlagRequired("title")
	cmd.MarkFlagRequired("choices")
	return cmd
}

func newProposalsCmd(g *globals) *cobra.Command {
	var status, communityID string
	cmd := &cobra.Command{
		Use:   "proposals",
		Short: "List the community's proposals",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if status != "" && !slices.Contains(proposalStatuses, status) {
				return fmt.Errorf("--status is one of %s, not %q", strings.Join(proposalStatuses, ", "), status)
			}
			return query(cmd, g, func(c *client.Client, ctx context.Context) ([]api.ProposalView, error) {
				return c.Proposals(ctx, communityID, status)
			}, printProposals)
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "only proposals in this status: "+strings.Join(proposalStatuses, ", "))
	cmd.Flags().StringVar(&communityID, "community", "", "community ID (default: the node's only community)")
	return cmd
}

func printProposals(w io.Writer, ps []api.ProposalView) error {
	if len(ps) == 0 {
		_, err := fmt.Fprintln(w, "No proposals. Make one with `agora propose`.")
		return err
	}
	now := time.Now()
	rows := [][]string{}
	for _, p := range ps {
		rows = append(rows, []string{shortID(p.ID), p.Status, relTime(now, time.UnixMilli(p.Ends)),
			strconv.Itoa(p.Votes), clipText(p.Title, 60)})
	}
	table(w, []string{"ID", "STATUS", "ENDS", "VOTES", "TITLE"}, rows)
	return nil
}

// relTime says when t is from now, roughly: "in 3m", "2h ago".
func relTime(now, t time.Time) string {
	d := t.Sub(now)
	abs := d.Abs()
	var s string
	switch {
	case abs < time.Second:
		return "now"
	case abs < time.Minute:
		s = fmt.Sprintf("%ds", abs/time.Second)
	case abs < time.Hour:
		s = fmt.Sprintf("%dm", abs/time.Minute)
	case abs < 48*time.Hour:
		s = fmt.Sprintf("%dh", abs/time.Hour)
	default:
		s = fmt.Sprintf("%dd", abs/(24*time.Hour))
	}
	if d > 0 {
		return "in " + s
	}
	return s + " ago"
}

func newVoteCmd(g *globals) *cobra.Command {
	var credits, reason, communityID string
	cmd := &cobra.Command{
		Use:   "vote ID CHOICE[,CHOICE...]",
		Short: "Vote on a proposal: choices by name or index, most preferred first for a ranked vote",
		Long: "Vote on a proposal. Name choices or give their index (0 is the first), comma-separated:\n" +
			"one for a single-choice vote, the ones you approve for approval, most preferred first for\n" +
			"ranked, and the ones you spend --credits on for quadratic. Voting again replaces your vote.\n" +
			"ID may be the short form `agora proposals` prints.",
		Example: "  agora vote bafyrei… yes\n  agora vote bafyrei… fri,mon\n  agora vote bafyrei… 0,2 --credits 600,400",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.VoteRequest{Community: communityID, Reason: reason}
			for c := range strings.SplitSeq(args[1], ",") {
				if c = strings.TrimSpace(c); c == "" {
					return fmt.Errorf("%q has an empty choice; separate choices with commas, e.g. yes or fri,mon", args[1])
				}
				if slices.Contains(req.Choices, c) {
					return fmt.Errorf("the choice %q is given twice", c)
				}
				req.Choices = append(req.Choices, c)
			}
			if len(req.Choices) > body.MaxChoices {
				return fmt.Errorf("a vote names at most %d choices, not %d", body.MaxChoices, len(req.Choices))
			}
			if len(reason) > body.MaxVoteReasonBytes {
				return fmt.Errorf("--reason is %d bytes; at most %d fit", len(reason), body.MaxVoteReasonBytes)
			}
			if credits != "" {
				var sum int64
				for c := range strings.SplitSeq(credits, ",") {
					n, err := parseThousandths("--credits", strings.TrimSpace(c), 1)
					if err != nil {
						return err
					}
					sum += n
					req.Credits = append(req.Credits, n)
				}
				if len(req.Credits) != len(req.Choices) {
					return fmt.Errorf("--credits needs one value per choice, in the same order (%d choices, %d values)", len(req.Choices), len(req.Credits))
				}
				if sum > body.MaxCredits {
					return fmt.Errorf("--credits add up to %d; your whole budget is %d thousandths", sum, body.MaxCredits)
				}
			}
			var id string
			return query(cmd, g, func(c *client.Client, ctx context.Context) (api.Voted, error) {
				var err error
				if id, err = resolveProposal(ctx, c, communityID, args[0]); err != nil {
					return api.Voted{}, err
				}
				return c.Vote(ctx, id, req)
			}, func(w io.Writer, v api.Voted) error {
				_, err := fmt.Fprintf(w, "Voted %s on %s: vote %s.\n", strings.Join(req.Choices, ", "), shortID(id), v.CID)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&credits, "credits", "", "quadratic votes: thousandths of your budget per choice, e.g. 600,400 (1000 in all at most)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for people")
	cmd.Flags().StringVar(&communityID, "community", "", "community ID (default: the node's only community)")
	return cmd
}

func newTallyCmd(g *globals) *cobra.Command {
	var communityID string
	cmd := &cobra.Command{
		Use:   "tally ID",
		Short: "Count a proposal's votes, and show where members' published tallies disagree",
		Long: "Count a proposal's votes as this node sees them. The fingerprint names the set of ballots\n" +
			"counted: members who counted the same ballots publish the same one. ID may be the short\n" +
			"form `agora proposals` prints.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd, g, func(c *client.Client, ctx context.Context) (api.TallyView, error) {
				id, err := resolveProposal(ctx, c, communityID, args[0])
				if err != nil {
					return api.TallyView{}, err
				}
				return c.Tally(ctx, communityID, id)
			}, printTally)
		},
	}
	cmd.Flags().StringVar(&communityID, "community", "", "community ID (default: the node's only community)")
	return cmd
}

func printTally(w io.Writer, t api.TallyView) error {
	status := t.Status
	switch {
	case t.Final:
		status += " (final)"
	case t.Status != "pending" && t.Status != "open" && t.Status != "invalid":
		status += " (not final: late votes may still count)"
	}
	weight := strconv.FormatFloat(t.Weight, 'f', -1, 64) + " of " + strconv.FormatFloat(t.Eligible, 'f', -1, 64) + " eligible"
	if t.Eligible > 0 {
		weight += fmt.Sprintf(" (%.1f%%)", 100*t.Weight/t.Eligible)
	}
	kv := []string{"proposal", t.ID, "status", status, "winner", cmp.Or(t.Winner, "none"),
		"voters", strconv.Itoa(t.Voters), "weight", weight, "fingerprint", t.Fingerprint}
	if len(t.Rounds) > 1 {
		kv = append(kv, "rounds", strconv.Itoa(len(t.Rounds)))
	}
	fields(w, kv...)
	if len(t.Counts) > 0 {
		fmt.Fprintln(w)
		printBars(w, t.Counts)
	}
	fmt.Fprintln(w)
	switch {
	case t.Tallies == 0:
		_, err := fmt.Fprintln(w, "No member has published a tally of it yet.")
		return err
	case len(t.Disagreements) == 0:
		_, err := fmt.Fprintf(w, "All %d tallies members published agree with this node's.\n", t.Tallies)
		return err
	}
	fmt.Fprintf(w, "%d of %d tallies members published disagree with this node's:\n", len(t.Disagreements), t.Tallies)
	rows := [][]string{}
	for _, d := range t.Disagreements {
		rows = append(rows, []string{d.PeerID, d.Status, strconv.FormatUint(d.Voters, 10), d.Fingerprint})
	}
	table(w, []string{"PEER", "STATUS", "VOTERS", "FINGERPRINT"}, rows)
	return nil
}

// printBars draws each choice's count as a bar, the largest first.
func printBars(w io.Writer, counts map[string]uint64) {
	const width = 24
	names := make([]string, 0, len(counts))
	var most uint64
	pad := 0
	for name, n := range counts {
		names = append(names, name)
		most = max(most, n)
		pad = max(pad, utf8.RuneCountInString(name))
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Or(cmp.Compare(counts[b], counts[a]), strings.Compare(a, b))
	})
	for _, name := range names {
		n := counts[name]
		bar := 0
		if most > 0 {
			// In float: n·width may not fit a uint64.
			bar = int(float64(n)/float64(most)*width + 0.5)
		}
		if n > 0 && bar == 0 {
			bar = 1
		}
		fmt.Fprintf(w, "%s%s  %s%d\n", name, strings.Repeat(" ", pad-utf8.RuneCountInString(name)), strings.Repeat("█", bar)+" "[:min(bar, 1)], n)
	}
}

// printGovPolicy prints a community's policy as governance derived it.
func printGovPolicy(w io.Writer, p api.PolicyView) error {
	rows := [][]string{}
	for _, k := range p.Keys {
		rows = append(rows, []string{k.Key, strconv.FormatInt(k.Value, 10), setBy(k.SetBy)})
	}
	table(w, []string{"KEY", "VALUE", "SET BY"}, rows)
	decided := func(ss []api.SetBy) string {
		out := make([]string, len(ss))
		for i, s := range ss {
			out[i] = s.ID + " (" + setBy(s.SetBy) + ")"
		}
		return orNone(out)
	}
	charter := "none"
	if p.Charter != nil {
		charter = decided([]api.SetBy{*p.Charter})
	}
	fmt.Fprintln(w)
	kv := []string{"community", p.Community, "founders", orNone(p.Founders), "banned", decided(p.Banned),
		"charter", charter, "certified", decided(p.Certified)}
	if len(p.Skipped) > 0 {
		kv = append(kv, "skipped", orNone(p.Skipped))
	}
	fields(w, kv...)
	return nil
}

// setBy names who decided a value: the genesis or a proposal.
func setBy(proposal string) string {
	if proposal == "" {
		return "genesis"
	}
	return "proposal " + shortID(proposal)
}

// policyKeyView is one policy key as `agora policy keys --json` prints it.
type policyKeyView struct {
	Key  string `json:"key"`
	Min  int64  `json:"min"`
	Max  int64  `json:"max"`
	Help string `json:"help"`
}

func newPolicyKeysCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "keys",
		Short: "List the community policy's keys, their ranges and what they mean",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keys := pcommunity.PolicyKeys()
			if g.json {
				out := make([]policyKeyView, len(keys))
				for i, k := range keys {
					out[i] = policyKeyView{Key: k.Name, Min: k.Min, Max: k.Max, Help: k.Help}
				}
				return printJSON(cmd.OutOrStdout(), out)
			}
			rows := [][]string{}
			for _, k := range keys {
				rows = append(rows, []string{k.Name, fmt.Sprintf("%d..%d", k.Min, k.Max), k.Help})
			}
			w := cmd.OutOrStdout()
			table(w, []string{"KEY", "RANGE", "MEANING"}, rows)
			_, err := fmt.Fprintln(w, "\nSet one at creation (`agora community create NAME --policy KEY=VALUE`) or by vote (`agora propose --action \"set-policy KEY=VALUE\"`).")
			return err
		},
	}
}
