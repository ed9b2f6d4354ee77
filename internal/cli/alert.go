package cli

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wharf-project/wharf/internal/api"
)

func init() { register(newAlertCmd) }

func newAlertCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "alert", Short: "List alerts and mark them read"}
	var unread bool
	ls := &cobra.Command{
		Use:   "ls [--unread]",
		Short: "List alerts, newest first",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			list, err := c.Alerts(e.ctx, unread)
			if err != nil {
				return err
			}
			return e.print(api.AlertList{Alerts: list}, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tLEVEL\tTIME\tREAD\tMESSAGE")
				for _, a := range list {
					read := "no"
					if !a.ReadAt.IsZero() {
						read = "yes"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.ID, a.Level, a.CreatedAt.Local().Format("2006-01-02 15:04:05"), read, a.Message)
				}
				tw.Flush()
			})
		},
	}
	ls.Flags().BoolVar(&unread, "unread", false, "only alerts not marked read")
	read := &cobra.Command{
		Use:   "read ID",
		Short: "Mark an alert read",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			if err := c.MarkAlertRead(e.ctx, args[0]); err != nil {
				return err
			}
			return e.print(map[string]string{"read": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "Marked alert %s read\n", args[0]) })
		},
	}
	cmd.AddCommand(ls, read)
	return cmd
}
