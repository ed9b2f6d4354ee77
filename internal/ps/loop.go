package ps

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/ps/clock"
	"github.com/wharf-project/wharf/internal/ps/fetch"
	"github.com/wharf-project/wharf/internal/ps/place"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Poll pacing.
const (
	defaultPollWait = 30 * time.Second
	maxPollWait     = 300 * time.Second
	pollSlack       = 30 * time.Second // beyond the wait before a poll times out
)

var pollBackoff = clock.Backoff{Base: time.Second, Max: time.Minute}

type pollResult struct {
	cfg     api.AgentConfig
	etag    string
	changed bool
	err     error
}

// pollLoop long-polls the NS for this server's configuration and applies
// every answer: a new configuration as it comes, the last one again on each
// 304 (a config cycle: markers are re-checked, failed packages retried after
// their backoff). Applying sets the placer's "allow usage of all fixed
// drives" from the settings, hands the storage location, relocation mode and
// server tasks to the relocation controller (which decides about a new
// location before downloads start), then the configuration to the fetcher
// (see applyConfig). An UpdateConfig request cancels the poll in flight and
// asks at once, without the ETag, and applies with force. Errors back off
// with jitter; an UpdateConfig request cuts the wait short.
func (d *Daemon) pollLoop(ctx context.Context, log *slog.Logger, client *apiclient.Client, name string, f *fetch.Fetcher, placer *place.Rotating) {
	log = log.With("component", "config")
	var (
		etag     string
		last     api.AgentConfig
		have     bool
		failures int
		waiting  []chan error // UpdateConfig requests not yet served
		serving  []chan error // those the poll in flight answers
	)
	answer := func(err error) {
		for _, r := range serving {
			r <- err
		}
		serving = nil
	}
	defer func() {
		serving = append(serving, waiting...)
		answer(errors.New("package server stopping"))
	}()
	for ctx.Err() == nil {
		serving, waiting = waiting, nil
		forced := len(serving) > 0
		wait := pollWait(last.Settings)
		tag := etag
		if forced || !have {
			tag, wait = "", 0
		}
		pctx, cancel := context.WithTimeout(ctx, wait+pollSlack)
		res := make(chan pollResult, 1)
		go func() {
			cfg, newTag, changed, err := client.AgentConfig(pctx, name, tag, wait)
			res <- pollResult{cfg, newTag, changed, err}
		}()
		var r pollResult
	poll:
		for {
			select {
			case r = <-res:
				break poll
			case w := <-d.wake:
				waiting = append(waiting, w)
				if !forced && have {
					cancel() // ask again at once, without the ETag
					<-res
					r = pollResult{err: errRestart}
					break poll
				}
			case <-ctx.Done():
				cancel()
				<-res
				return
			}
		}
		cancel()
		switch {
		case r.err == errRestart:
			continue
		case r.err != nil:
			if ctx.Err() != nil {
				return
			}
			answer(r.err)
			delay := pollBackoff.Delay(failures)
			failures++
			level := slog.LevelWarn
			if errors.Is(r.err, wharf.ErrUnauthorized) || errors.Is(r.err, wharf.ErrForbidden) {
				level = slog.LevelError // the NS refuses this PS's credential
			}
			log.Log(ctx, level, "poll configuration", "err", r.err, "attempt", failures, "retry_in", delay)
			if len(waiting) > 0 {
				continue // someone asks for a poll now
			}
			select {
			case <-ctx.Done():
				return
			case <-d.cfg.Clock.After(delay):
			case w := <-d.wake:
				waiting = append(waiting, w)
			}
			continue
		}
		failures = 0
		if r.changed {
			if !have || r.etag != etag {
				log.Info("configuration received", "etag", r.etag, "packages", len(r.cfg.Packages),
					"download_concurrency", r.cfg.Settings.DownloadConcurrency, "poll_wait_seconds", r.cfg.Settings.PollWaitSeconds)
			}
			last, etag, have = r.cfg, r.etag, true
		}
		if have {
			// The placer first: downloads the Apply starts are placed
			// under the settings that came with it.
			if placer.SetAllFixedDrives(last.Settings.AllFixedDrives) {
				log.Info("allow usage of all fixed drives changed", "all_fixed_drives", last.Settings.AllFixedDrives)
			}
			d.applyConfig(ctx, last, forced)
		}
		answer(nil)
	}
}

var errRestart = errors.New("poll restarted")

func pollWait(s api.AgentSettings) time.Duration {
	w := time.Duration(s.PollWaitSeconds) * time.Second
	if w <= 0 {
		return defaultPollWait
	}
	return min(w, maxPollWait)
}
