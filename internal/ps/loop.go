package ps

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/ps/clock"
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

// poller long-polls the NS for this server's configuration and hands every
// answer to apply. Build it with newPoller; run it with run.
type poller struct {
	client *apiclient.Client
	name   string
	url    string // where this PS serves packages, reported on every poll
	// unauthorized is called when the NS refuses the credential; it
	// returns true when it switched to another one (a rotation the NS
	// took before this PS could record it), and the poll is retried at
	// once.
	unauthorized func() bool
	clock        clock.Clock
	log          *slog.Logger
	apply        func(cfg api.AgentConfig, forced bool)
	wake         chan chan error // UpdateConfig requests
}

func newPoller(client *apiclient.Client, name, url string, c clock.Clock, log *slog.Logger, apply func(api.AgentConfig, bool), unauthorized func() bool) *poller {
	return &poller{client: client, name: name, url: url, clock: c, log: log.With("component", "config"), apply: apply,
		unauthorized: unauthorized, wake: make(chan chan error)}
}

// UpdateConfig makes the loop ask the NS now; it returns once the answer
// was applied, or with the error of the poll.
func (p *poller) UpdateConfig(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case p.wake <- reply:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run long-polls the NS for this server's configuration until ctx ends
// and applies every answer: a new configuration as it comes, the last one
// again on each 304 (a config cycle: markers are re-checked, failed
// packages retried after their backoff). Applying never waits on the parts
// it hands the configuration to (see parts.apply). An UpdateConfig request
// cancels the poll in flight and asks at once, without the ETag, and
// applies with force. Errors back off with jitter; an UpdateConfig request
// cuts the wait short.
func (p *poller) run(ctx context.Context) {
	log := p.log
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
			cfg, newTag, changed, err := p.client.AgentConfigAt(pctx, p.name, p.url, tag, wait)
			res <- pollResult{cfg, newTag, changed, err}
		}()
		var r pollResult
	poll:
		for {
			select {
			case r = <-res:
				break poll
			case w := <-p.wake:
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
			if errors.Is(r.err, wharf.ErrUnauthorized) && p.unauthorized != nil && p.unauthorized() {
				// The credential changed under this poll: ask again with
				// the one in effect now.
				waiting, serving = append(serving, waiting...), nil
				continue
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
			case <-p.clock.After(delay):
			case w := <-p.wake:
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
			p.apply(last, forced)
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
