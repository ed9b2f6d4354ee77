package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/wharf"
)

func newServerWatchCmd(e *env) *cobra.Command {
	var opt watchOptions
	var noWait bool
	cmd := &cobra.Command{
		Use:   "watch NAME [--timeout DURATION] [--no-wait]",
		Short: "Follow a Package Server's relocation until the attempt ends",
		Long: `Follow the relocation of a Package Server from the Notification Server: a
line whenever its progress changes (packages and bytes moved, the time left),
then how the attempt ended. When no attempt runs, wait for the next one to
start (after a policy change or a retry) unless --no-wait; an attempt
canceled for a new target is followed by the next one. With --json, every
Package Location Status seen is one line of JSON.

EXIT STATUS
  0 when the attempt ends with success; 1 when it ends otherwise (a warning:
  packages stay behind links; refused by a prerequisite; stopped by an
  error), when --timeout passes first, or on error.`,
		Example: `  wharf policy set --server ps-paris --linux-location /srv/wharf && wharf server watch ps-paris
  wharf server retry-relocation ps-paris && wharf server watch ps-paris --timeout 1h`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if opt.interval <= 0 || opt.timeout < 0 {
				return usageError{errors.New("--interval must be positive and --timeout not negative")}
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			opt.wait = !noWait
			return watchRelocation(e, c, args[0], opt)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&opt.timeout, "timeout", 0, "give up after this long (0: never)")
	f.DurationVar(&opt.interval, "interval", time.Second, "how often to ask the Notification Server")
	f.BoolVar(&noWait, "no-wait", false, "when no attempt runs, print the last one and exit instead of waiting for the next")
	return cmd
}

type watchOptions struct {
	interval, timeout time.Duration
	wait              bool
}

// watchRelocation follows a server's relocation through its latest
// Package Location Status (GET /servers/{name}, without package rows):
// progress while an attempt runs, then its end.
func watchRelocation(e *env, c *apiclient.Client, name string, opt watchOptions) error {
	ctx := e.ctx
	if opt.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opt.timeout)
		defer cancel()
	}
	latest := func() (*api.LocationStatus, error) {
		s, err := c.ServerPage(ctx, name, 0, 0)
		return s.LocationStatus, err
	}
	ls, err := latest()
	if err != nil {
		return err
	}
	// seen is the ended attempt there was when the watch began: only a
	// later one ends the watch.
	var seen time.Time
	if ls != nil && !attemptRunning(ls) {
		seen = ls.ReceivedAt
		if !opt.wait {
			watchLine(e, name, ls)
			return attemptResult(name, ls)
		}
	}
	if ls == nil || !attemptRunning(ls) {
		if !e.json {
			fmt.Fprintf(e.stdio.Err, "waiting for %s to start a relocation attempt (Ctrl-C to stop)\n", name)
		}
	}
	last := ""
	for {
		switch {
		case ls == nil:
		case attemptRunning(ls):
			if line := progressText(name, ls); line != last {
				last = line
				watchLine(e, name, ls)
			}
		case !ls.ReceivedAt.Equal(seen):
			watchLine(e, name, ls)
			if ls.Outcome == api.OutcomeCanceled {
				seen, last = ls.ReceivedAt, "" // a new target: the next attempt follows
				break
			}
			return attemptResult(name, ls)
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) && e.ctx.Err() == nil {
				return fmt.Errorf("%s: no relocation attempt ended within %s", name, opt.timeout)
			}
			return ctx.Err()
		case <-time.After(opt.interval):
		}
		if ls, err = latest(); err != nil {
			if ctx.Err() != nil {
				continue // the select above says why
			}
			return err
		}
	}
}

// attemptRunning reports whether the event is of an attempt under way.
func attemptRunning(ls *api.LocationStatus) bool {
	return ls.Progress != nil || wharf.RelocationStatus(ls.LastStatus).Has(wharf.RelocationInProgress)
}

// outcomeOf is how an ended attempt ended: its outcome, or for an event of
// an older Package Server, what its bits say.
func outcomeOf(ls *api.LocationStatus) string {
	if ls.Outcome != "" {
		return ls.Outcome
	}
	st := wharf.RelocationStatus(ls.LastStatus)
	switch {
	case st&wharf.RelocationPrerequisites != 0:
		return api.OutcomeRefused
	case st.Has(wharf.RelocationSomeNotMoved):
		return api.OutcomeWarning
	case st.Has(wharf.RelocationSuccess):
		return api.OutcomeSuccess
	}
	return api.OutcomeError
}

// attemptResult is nil for an attempt that ended with success, else an
// error that says how it ended.
func attemptResult(name string, ls *api.LocationStatus) error {
	if ls == nil {
		return fmt.Errorf("%s has not reported a relocation attempt", name)
	}
	o := outcomeOf(ls)
	if o == api.OutcomeSuccess {
		return nil
	}
	msg := ls.Message
	if msg == "" {
		msg = strings.Join(ls.LastStatusFlags, ", ")
	}
	return fmt.Errorf("%s: relocation to %s ended with %s: %s", name, ls.StoragePath, o, msg)
}

func progressText(name string, ls *api.LocationStatus) string {
	text := fmt.Sprintf("%s: relocating to %s", name, ls.StoragePath)
	if p := ls.Progress; p != nil {
		pct := int64(0)
		if p.BytesTotal > 0 {
			pct = p.BytesDone * 100 / p.BytesTotal
		}
		text += fmt.Sprintf(": %d%%, %d of %d packages, %s of %s", pct, p.PackagesDone, p.PackagesTotal,
			wharf.FormatSize(p.BytesDone), wharf.FormatSize(p.BytesTotal))
		if p.ETASeconds > 0 {
			text += fmt.Sprintf(", about %s left", time.Duration(p.ETASeconds)*time.Second)
		}
	}
	return text
}

// watchLine prints one state of the watch: a line of text, or the event as
// a line of JSON.
func watchLine(e *env, name string, ls *api.LocationStatus) {
	if e.json {
		data, _ := json.Marshal(ls)
		fmt.Fprintf(e.stdio.Out, "%s\n", data)
		return
	}
	if attemptRunning(ls) {
		fmt.Fprintln(e.stdio.Out, progressText(name, ls))
		return
	}
	when := ls.LastAttempt.Local().Format("15:04:05")
	switch o := outcomeOf(ls); o {
	case api.OutcomeSuccess:
		fmt.Fprintf(e.stdio.Out, "%s: success: every package is at %s (attempt of %s, %s)\n", name, ls.StoragePath, when, statusText(ls))
	default:
		fmt.Fprintf(e.stdio.Out, "%s: %s: %s (attempt of %s to %s, %s)\n", name, o, ls.Message, when, ls.StoragePath, statusText(ls))
	}
}
