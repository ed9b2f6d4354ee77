package cli

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharf-project/wharf/internal/api"
)

func init() { register(newServerCmd) }

func newServerCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "server", Short: "List and inspect Package Servers"}
	cmd.AddCommand(newServerLsCmd(e), newServerShowCmd(e))
	return cmd
}

func newServerLsCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List enrolled Package Servers",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			list, err := c.ListServers(e.ctx)
			if err != nil {
				return err
			}
			return e.print(api.ServerList{Servers: list}, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tOS\tURL\tLAST CONTACT")
				for _, s := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.OS, s.URL, ago(s.LastContact))
				}
				tw.Flush()
			})
		},
	}
}

func newServerShowCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a Package Server and the state of its packages",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			s, err := c.Server(e.ctx, args[0])
			if err != nil {
				return err
			}
			return e.print(s, func(w io.Writer) {
				fmt.Fprintf(w, "Name:          %s\nOS:            %s\nURL:           %s\nEnrolled:      %s\nLast contact:  %s\n",
					s.Name, s.OS, s.URL, s.EnrolledAt.Local().Format("2006-01-02 15:04:05"), ago(s.LastContact))
				if len(s.Packages) == 0 {
					fmt.Fprintln(w, "\nNo package states reported yet.")
					return
				}
				fmt.Fprintln(w, "\nPackages:")
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "  PACKAGE\tSTATE\tPATH\tREASON")
				for _, p := range s.Packages {
					fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", p.PackageID, p.State, p.Path, p.Reason)
				}
				tw.Flush()
			})
		},
	}
}

// ago formats a past time for people: "12s ago", or "never".
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return fmt.Sprintf("%s ago (%s)", d, t.Local().Format("2006-01-02 15:04:05"))
}
