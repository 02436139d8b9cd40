package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agora-p2p/agora/node/api"
)

func newCommunityCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "community",
		Aliases: []string{"communities"},
		Short:   "Create, join, invite to, leave and list communities",
	}
	var desc string
	var policy []string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a community with this node as its founder",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			values, err := parsePolicyValues(policy)
			if err != nil {
				return err
			}
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			res, err := c.CreateCommunity(ctx, api.CreateCommunityRequest{Name: args[0], Description: desc, Policy: values})
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Created community %q.\n", res.Name)
			fields(w, "ID", res.ID)
			fmt.Fprintf(w, "\nInvite others with this string (they run `agora community join INVITE`):\n\n%s\n", res.Invite)
			return nil
		},
	}
	create.Flags().StringVar(&desc, "description", "", "what the community is about")
	create.Flags().StringArrayVar(&policy, "policy", nil, "a policy value other than the default, as `KEY=VALUE` (repeatable; see agora policy keys)")

	invite := &cobra.Command{
		Use:   "invite [ID]",
		Short: "Print an invite with this node's current addresses",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			id := ""
			if len(args) == 1 {
				id = args[0]
			} else {
				cs, err := c.Communities(ctx)
				if err != nil {
					return err
				}
				if id, err = onlyCommunity(cs); err != nil {
					return err
				}
			}
			inv, err := c.Invite(ctx, id)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), inv)
			}
			fmt.Fprintln(cmd.OutOrStdout(), inv.Invite)
			return nil
		},
	}

	join := &cobra.Command{
		Use:   "join INVITE",
		Short: "Join a community with an invite string (or @FILE, or - for standard input)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := argOrFile(args[0])
			if err != nil {
				return err
			}
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			res, err := c.JoinCommunity(ctx, text)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Joined community %q (%s).\n", res.Name, res.ID)
			return nil
		},
	}

	leave := &cobra.Command{
		Use:   "leave ID",
		Short: "Leave a community",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			if err := c.LeaveCommunity(ctx, args[0]); err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), map[string]string{"id": args[0], "status": "left"})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Left community %s.\n", args[0])
			return nil
		},
	}

	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the communities this node is in",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			cs, err := c.Communities(ctx)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), cs)
			}
			if len(cs) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "Not in any community yet: `agora community create NAME` or `agora community join INVITE`.")
				return nil
			}
			table(cmd.OutOrStdout(), []string{"NAME", "ID", "MEMBERS"}, communityRows(cs))
			return nil
		},
	}

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a community: founders and members",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			d, err := c.Community(ctx, args[0])
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), d)
			}
			fields(cmd.OutOrStdout(), "name", d.Name, "ID", d.ID, "description", d.Description,
				"founders", orNone(d.Founders), "members", orNone(d.Members))
			return nil
		},
	}
	cmd.AddCommand(create, invite, join, leave, list, show)
	return cmd
}

// onlyCommunity picks the node's single community, or says which IDs to
// choose from.
func onlyCommunity(cs []api.Community) (string, error) {
	switch len(cs) {
	case 1:
		return cs[0].ID, nil
	case 0:
		return "", fmt.Errorf("this node is not in any community; create one with `agora community create NAME` or join one with `agora community join INVITE`")
	}
	ids := make([]string, 0, len(cs))
	for _, c := range cs {
		ids = append(ids, fmt.Sprintf("%s (%s)", c.ID, c.Name))
	}
	return "", fmt.Errorf("this node is in %d communities; name one of: %s", len(cs), strings.Join(ids, ", "))
}

// argOrFile reads "@path" from a file and "-" from standard input.
func argOrFile(s string) (string, error) {
	switch {
	case s == "-":
		b, err := readAllLimited(os.Stdin)
		return string(b), err
	case strings.HasPrefix(s, "@"):
		f, err := os.Open(s[1:])
		if err != nil {
			return "", fmt.Errorf("cannot read %s: %w", s[1:], err)
		}
		defer f.Close()
		b, err := readAllLimited(f)
		return string(b), err
	}
	return s, nil
}
