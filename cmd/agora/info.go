package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agora-p2p/agora/node/api"
)

func newIDCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "id",
		Short: "Show this node's peer ID and addresses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			id, err := c.Identity(ctx)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), id)
			}
			fields(cmd.OutOrStdout(), "peer ID", id.PeerID, "addresses", orNone(id.Addrs))
			return nil
		},
	}
}

func communityRows(cs []api.Community) [][]string {
	rows := make([][]string, 0, len(cs))
	for _, c := range cs {
		rows = append(rows, []string{c.Name, c.ID, strconv.Itoa(c.Members)})
	}
	return rows
}

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the node's reachability, peers and communities",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			st, err := c.Status(ctx)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), st)
			}
			w := cmd.OutOrStdout()
			fields(w, "peer ID", st.PeerID, "version", st.Version, "uptime", fmt.Sprintf("%ds", st.UptimeS),
				"reachability", st.Reachability, "peers", strconv.Itoa(st.Peers), "addresses", orNone(st.Addrs))
			fmt.Fprintln(w)
			if len(st.Communities) == 0 {
				fmt.Fprintln(w, "Not in any community yet: `agora community create NAME` or `agora community join INVITE`.")
				return nil
			}
			table(w, []string{"COMMUNITY", "ID", "MEMBERS"}, communityRows(st.Communities))
			return nil
		},
	}
}

func newPeersCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "peers",
		Short: "List connected peers, with path (direct or relayed) and latency",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			ps, err := c.Peers(ctx)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), ps)
			}
			if len(ps) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "No peers connected.")
				return nil
			}
			rows := [][]string{}
			for _, p := range ps {
				addr := ""
				if len(p.Addrs) > 0 {
					addr = p.Addrs[0]
				}
				rows = append(rows, []string{p.PeerID, p.Path, fmt.Sprintf("%.1f ms", p.LatencyMS), addr})
			}
			table(cmd.OutOrStdout(), []string{"PEER", "PATH", "LATENCY", "ADDRESS"}, rows)
			return nil
		},
	}
}

func newNetcheckCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "netcheck",
		Short: "Explain how reachable this node is and what to do about it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			nc, err := c.Netcheck(ctx)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), nc)
			}
			pm := "off"
			if nc.PortMapping.Enabled {
				pm = "on, no mapping obtained"
				if len(nc.PortMapping.Mapped) > 0 {
					pm = "on: " + strings.Join(nc.PortMapping.Mapped, ", ")
				}
			}
			w := cmd.OutOrStdout()
			fields(w, "reachability", nc.Reachability, "NAT type", nc.NATDeviceType,
				"port mapping", pm, "peers", strconv.Itoa(nc.Peers),
				"listening on", orNone(nc.ListenAddrs), "seen by peers as", orNone(nc.ObservedAddrs),
				"relay reservations", orNone(nc.RelayReservations))
			fmt.Fprintln(w)
			fmt.Fprintln(w, nc.Hint)
			return nil
		},
	}
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.json {
				return printJSON(cmd.OutOrStdout(), map[string]string{"version": nodeVersion()})
			}
			fmt.Fprintln(cmd.OutOrStdout(), "agora", nodeVersion())
			return nil
		},
	}
}
