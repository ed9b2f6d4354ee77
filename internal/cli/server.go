package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/wharf"
)

func init() { register(newServerCmd) }

func newServerCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "server", Short: "List, inspect, remove Package Servers and rotate their credentials"}
	cmd.AddCommand(newServerLsCmd(e), newServerShowCmd(e), newServerWatchCmd(e), newServerRetryCmd(e), newServerCheckCmd(e),
		newServerRmCmd(e), newServerRotateCmd(e))
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
				fmt.Fprintln(tw, "NAME\tOS\tURL\tSTORAGE PATH\tLAST RELOCATION\tLAST CONTACT")
				for _, s := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.OS, s.URL, storagePathText(s), relocationText(s), ago(s.LastContact))
				}
				tw.Flush()
			})
		},
	}
}

func newServerShowCmd(e *env) *cobra.Command {
	var offset, limit int
	var follow bool
	cmd := &cobra.Command{
		Use:   "show NAME [--offset N] [--limit N] [--follow]",
		Short: "Show a Package Server and the state of its packages",
		Long: `Show a Package Server: the storage path in effect, its latest Package
Location Status, the count of the package states it reported by state, and a
page of those states by package id (--limit N from --offset N; 0 for none),
with each package's name and version.

With --follow, then follow its relocation as ` + "`wharf server watch`" + ` does.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if offset < 0 || limit < 0 {
				return usageError{errors.New("--offset and --limit must not be negative")}
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			s, err := c.ServerPage(e.ctx, args[0], offset, limit)
			if err != nil {
				return err
			}
			err = e.print(s, func(w io.Writer) {
				fmt.Fprintf(w, "Name:          %s\nOS:            %s\nURL:           %s\nEnrolled:      %s\nLast contact:  %s\nStorage path:  %s\n",
					s.Name, s.OS, s.URL, s.EnrolledAt.Local().Format("2006-01-02 15:04:05"), ago(s.LastContact), storagePathText(s))
				if ls := s.LocationStatus; ls != nil {
					printLocationStatus(w, ls)
				}
				if h := s.Health; h != nil {
					fmt.Fprintln(w)
					printLinkAudit(w, "Links:         ", h.Links)
					printCapacity(w, "Capacity:      ", h)
				}
				if s.PackagesTotal == 0 {
					fmt.Fprintln(w, "\nNo package states reported yet.")
					return
				}
				var parts []string
				for _, st := range []string{api.StateReady, api.StateDownloading, api.StateFailed, api.StateUnavailable} {
					if n := s.PackageCounts[st]; n > 0 {
						parts = append(parts, fmt.Sprintf("%d %s", n, st))
					}
				}
				fmt.Fprintf(w, "\nPackages:      %d (%s)\n", s.PackagesTotal, strings.Join(parts, ", "))
				if len(s.Packages) == 0 {
					return
				}
				if len(s.Packages) < s.PackagesTotal {
					fmt.Fprintf(w, "%d to %d of %d (--offset, --limit):\n", offset+1, offset+len(s.Packages), s.PackagesTotal)
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "  NAME\tVERSION\tPACKAGE\tSTATE\tPATH\tREASON")
				for _, p := range s.Packages {
					fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", orDash(p.Name), orDash(p.Version), p.PackageID, p.State, p.Path, p.Reason)
				}
				tw.Flush()
			})
			if err != nil || !follow {
				return err
			}
			if !e.json {
				fmt.Fprintln(e.stdio.Out)
			}
			return watchRelocation(e, c, args[0], watchOptions{interval: time.Second, wait: true})
		},
	}
	cmd.Flags().IntVar(&offset, "offset", 0, "skip the first N package states")
	cmd.Flags().IntVar(&limit, "limit", api.DefaultServerPackages, "list at most N package states (0: only their counts)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "then follow its relocation until the attempt ends (see wharf server watch)")
	return cmd
}

// storagePathText is where a server keeps its packages now (never the
// target of a refused attempt), as the console shows it.
func storagePathText(s api.Server) string {
	if s.StoragePath == "" {
		return "default"
	}
	return s.StoragePath
}

// relocationText sums up a server's last relocation attempt in a column:
// its flags or how it ended, and the target when the store is not there.
func relocationText(s api.Server) string {
	ls := s.LocationStatus
	if ls == nil {
		return "-"
	}
	what := strings.Join(ls.LastStatusFlags, ",")
	switch {
	case ls.Progress != nil:
		what = "in-progress"
		if p := ls.Progress; p.BytesTotal > 0 {
			what += fmt.Sprintf(" %d%%", p.BytesDone*100/p.BytesTotal)
		}
	case ls.Outcome == api.OutcomeCanceled || ls.Outcome == api.OutcomeError:
		what = ls.Outcome
	case what == "":
		what = "none"
	}
	if ls.StoragePath != "" && ls.StoragePath != s.StoragePath {
		what += " (to " + ls.StoragePath + ")"
	}
	return what
}

// statusText is a status as bits and names: "0x040 known-folder", and how
// the attempt ended when no bit says so ("0x000 canceled").
func statusText(ls *api.LocationStatus) string {
	words := ls.LastStatusFlags
	if ls.Outcome == api.OutcomeCanceled || ls.Outcome == api.OutcomeError {
		words = append(append([]string(nil), words...), ls.Outcome)
	}
	return fmt.Sprintf("0x%03x %s", ls.LastStatus, strings.Join(words, ", "))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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

// printLocationStatus prints the Package Location Status (SPEC §6.7).
func printLocationStatus(w io.Writer, ls *api.LocationStatus) {
	fmt.Fprintln(w, "\nPackage Location Status:")
	fmt.Fprintf(w, "  Target of the attempt:  %s\n", ls.StoragePath)
	fmt.Fprintf(w, "  Volume size:            %d MiB\n", ls.VolumeTotalMB)
	fmt.Fprintf(w, "  Volume free:            %d MiB\n", ls.VolumeFreeMB)
	fmt.Fprintf(w, "  Used by this PS:        %d MiB\n", ls.PSUsedMB)
	fmt.Fprintf(w, "  Required by this PS:    %d MiB\n", ls.VolumeRequiredMB)
	fmt.Fprintf(w, "  Last attempt:           %s\n", ls.LastAttempt.Local().Format("2006-01-02 15:04:05"))
	fmt.Fprintf(w, "  Last status:            %s\n", statusText(ls))
	fmt.Fprintf(w, "  Automatic attempts:     %d of %d\n", ls.AttemptsDone, ls.MaxAttempts)
	if ls.Message != "" {
		fmt.Fprintf(w, "  Message:                %s\n", ls.Message)
	}
	if p := ls.Progress; p != nil {
		fmt.Fprintf(w, "  Progress:               %d of %d packages, %s of %s, ETA %s\n", p.PackagesDone, p.PackagesTotal,
			wharf.FormatSize(p.BytesDone), wharf.FormatSize(p.BytesTotal), time.Duration(p.ETASeconds)*time.Second)
	}
	if c := ls.PackageCounts; c != nil {
		fmt.Fprintf(w, "  Packages:               %d moved, %d linked, %d failed, %d pending\n", c.Moved, c.Linked, c.Failed, c.Pending)
	}
	var linked []api.RelocationPackage
	for _, p := range ls.Packages {
		if p.State != api.RelocationMoved {
			linked = append(linked, p)
		}
	}
	if len(linked) > 0 {
		fmt.Fprintln(w, "  Packages not at the target:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, p := range linked {
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\n", orDash(p.Name), orDash(p.Version), p.PackageID, p.State, p.Reason)
		}
		tw.Flush()
	}
}

func newServerRetryCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "retry-relocation NAME",
		Short: "Ask a Package Server to retry its relocation now (a manual retry)",
		Long: `Queue a retry-relocation server task. The Package Server picks it up at
once through its configuration long-poll. A manual retry does not count
towards the maximum of automatic retries.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			t, err := c.CreateTask(e.ctx, args[0], api.TaskRequest{Type: api.TaskRetryRelocation})
			if err != nil {
				return err
			}
			return e.print(t, func(w io.Writer) {
				fmt.Fprintf(w, "Retry of the relocation queued for %s (task %s)\n", t.Server, t.ID)
			})
		},
	}
}

func newServerCheckCmd(e *env) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "check-location NAME PATH",
		Short: "Ask a Package Server to evaluate a storage path, moving nothing",
		Long: `Ask the Package Server to check PATH as a relocation target: every
prerequisite with its verdict, MiB needed against MiB free, the longest
resulting path against the limit, how many packages would move by rename and
by copy, and an estimate of the time. Nothing moves.

EXIT STATUS
  0 when every prerequisite passes, 1 when one fails (or on error), as
  ` + "`wharf ps relocate --plan`" + ` on the Package Server itself.`,
		Args: cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			t, err := c.CreateTask(e.ctx, args[0], api.TaskRequest{Type: api.TaskCheckLocation, Path: args[1]})
			if err != nil {
				return err
			}
			deadline := time.Now().Add(timeout)
			for t.DoneAt.IsZero() {
				if time.Now().After(deadline) {
					return fmt.Errorf("%s did not answer within %s; is it running? (task %s)", args[0], timeout, t.ID)
				}
				select {
				case <-e.ctx.Done():
					return e.ctx.Err()
				case <-time.After(250 * time.Millisecond):
				}
				if t, err = c.Task(e.ctx, args[0], t.ID); err != nil {
					return err
				}
			}
			if t.Error != "" {
				return fmt.Errorf("%s could not check %s: %s", args[0], args[1], t.Error)
			}
			if t.Plan == nil {
				return errors.New("the package server answered without a plan")
			}
			if err := e.print(t.Plan, func(w io.Writer) { printPlan(w, t.Plan) }); err != nil {
				return err
			}
			if t.Plan.Status != 0 {
				return fmt.Errorf("%s cannot relocate to %s: %s", args[0], t.Plan.Path, strings.Join(t.Plan.StatusFlags, ", "))
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait for the Package Server's answer")
	return cmd
}

// prerequisiteLine is the mark, the name and the detail column of one
// prerequisite's verdict (flag is the status flag it sets when it fails):
// a passing check is named by what it checks ("ok  enough space"), a
// failing one by that and the flag it sets ("FAIL  enough space
// (insufficient-space)").
func prerequisiteLine(flag string, ok, skipped bool) (mark, name string) {
	name = wharf.PrerequisiteCheck(flag)
	switch {
	case skipped:
		return "-", name
	case ok:
		return "ok", name
	}
	if name != flag {
		name += " (" + flag + ")"
	}
	return "FAIL", name
}

// printPlan prints a relocation plan (SPEC §6.5).
func printPlan(w io.Writer, p *api.LocationPlan) {
	verdict := "can relocate"
	if p.Status != 0 {
		verdict = "cannot relocate: " + strings.Join(p.StatusFlags, ", ")
	}
	fmt.Fprintf(w, "Target %s: %s\n", p.Path, verdict)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, pr := range p.Prerequisites {
		mark, name := prerequisiteLine(pr.Name, pr.OK, false)
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", mark, name, pr.Detail)
	}
	tw.Flush()
	fmt.Fprintf(w, "Space:        %d MiB needed, %d MiB free\n", p.NeededMB, p.FreeMB)
	fmt.Fprintf(w, "Longest path: %d of %d\n", p.LongestPath, p.PathLimit)
	fmt.Fprintf(w, "Packages:     %d by rename, %d by copy (%s)\n", p.RenamePackages, p.CopyPackages, wharf.FormatSize(p.CopyBytes))
	fmt.Fprintf(w, "Estimate:     %s\n", time.Duration(p.EstimateSeconds)*time.Second)
}
