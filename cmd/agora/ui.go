package main

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"time"

	"github.com/spf13/cobra"
)

func newUICmd(g *globals) *cobra.Command {
	var printOnly bool
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Open the node's dashboard in a browser",
		Long: "Open the node's dashboard in a browser with a one-time login link (valid for one minute;\n" +
			"the API token never reaches the browser). When no browser can be opened, or with --print,\n" +
			"the link is printed instead.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			login, err := c.UILogin(ctx)
			if err != nil {
				return err
			}
			link := c.BaseURL() + login.Path
			if g.json {
				return printJSON(cmd.OutOrStdout(), map[string]any{"url": link, "expires": login.Expires})
			}
			if !printOnly && openBrowser(link) == nil {
				fmt.Fprintln(cmd.OutOrStdout(), "Opened the dashboard in your browser.")
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Open this link within a minute (it works once):\n%s\n", link)
			return nil
		},
	}
	cmd.Flags().BoolVar(&printOnly, "print", false, "only print the login link")
	return cmd
}

// openBrowser starts the desktop's browser on link.
func openBrowser(link string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", link)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", link)
	default:
		cmd = exec.Command("xdg-open", link)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait() //nolint:errcheck // the browser outlives us
	return nil
}
