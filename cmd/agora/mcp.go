package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/agora-p2p/agora/node/client"
	"github.com/agora-p2p/agora/node/mcpserve"
)

func newMCPCmd(g *globals) *cobra.Command {
	var community string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Serve your communities' skills as MCP tools on stdin/stdout, for Claude Desktop, editors or any MCP client",
		Long: "Serve the skills of this node and of its communities as MCP tools over stdio, for an MCP client\n" +
			"that starts `agora mcp` itself. Each tool call is a task, run on this node or delegated to the\n" +
			"best member offering the skill, exactly as `agora ask` would. Stdout carries the protocol;\n" +
			"messages go to stderr. It runs until the client closes stdin. See docs/mcp.md.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 {
				return fmt.Errorf("--timeout must be positive, e.g. 2m")
			}
			c, err := g.client(client.WithTimeout(timeout + 30*time.Second))
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			src := mcpserve.FromClient(c)
			src.Community, src.Timeout = community, timeout
			srv := mcpserve.New(src, mcpserve.Options{Version: nodeVersion(), Logger: log})

			// A daemon that is not running (or a wrong --community) is
			// said now, not served as an empty tool list.
			check, done := context.WithTimeout(cmd.Context(), 30*time.Second)
			err = srv.Refresh(check)
			done()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := srv.ServeStdio(ctx); err != nil && ctx.Err() == nil {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&community, "community", "", "only the skills offered in this community (ID), and run tasks there")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "each tool call's deadline")
	return cmd
}
