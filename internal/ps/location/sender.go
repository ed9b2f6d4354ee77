package location

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/clock"
	"github.com/wharf-project/wharf/internal/wharf"
)

// sender delivers Package Location Status events to the NS from one
// goroutine, in order: the events that end attempts first, each retried
// until the NS takes it; then the latest progress event, which is dropped
// when it fails (a newer one follows) and when an attempt ends before it
// went out.
type sender struct {
	c    *Controller
	wake chan struct{}

	mu     sync.Mutex
	finals []api.LocationStatus
	prog   *api.LocationStatus
}

func newSender(c *Controller) *sender { return &sender{c: c, wake: make(chan struct{}, 1)} }

// final queues the event that ends an attempt.
func (s *sender) final(ev api.LocationStatus) {
	s.mu.Lock()
	s.finals = append(s.finals, ev)
	s.prog = nil
	s.mu.Unlock()
	s.poke()
}

// progress replaces the progress event waiting to go out.
func (s *sender) progress(ev api.LocationStatus) {
	s.mu.Lock()
	s.prog = &ev
	s.mu.Unlock()
	s.poke()
}

func (s *sender) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

var sendBackoff = clock.Backoff{Base: time.Second, Max: time.Minute}

func (s *sender) serve(ctx context.Context) {
	c := s.c
	failures := 0
	for ctx.Err() == nil {
		s.mu.Lock()
		var ev api.LocationStatus
		final, have := false, false
		switch {
		case len(s.finals) > 0:
			ev, final, have = s.finals[0], true, true
		case s.prog != nil:
			ev, have = *s.prog, true
			s.prog = nil
		}
		s.mu.Unlock()
		if !have {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
			}
			continue
		}
		err := c.opt.NS.PostLocationStatus(ctx, c.opt.Server, cleanEvent(ev))
		switch {
		case err == nil:
			failures = 0
			if final {
				s.mu.Lock()
				s.finals = s.finals[1:]
				s.mu.Unlock()
				c.eventSent(ctx, ev)
			}
			continue
		case ctx.Err() != nil:
			return
		case final && (errors.Is(err, wharf.ErrInvalid) || errors.Is(err, wharf.ErrTooLarge)):
			// The NS will never take it; retrying would block the rest.
			c.log.Error("the NS refused a location status event; dropping it", "target", ev.StoragePath, "err", err)
			s.mu.Lock()
			s.finals = s.finals[1:]
			s.mu.Unlock()
			continue
		case !final:
			c.log.Debug("send relocation progress", "err", err)
			continue
		}
		d := sendBackoff.Delay(failures)
		failures++
		c.log.Warn("send location status event; retrying", "target", ev.StoragePath, "err", err, "retry_in", d)
		if clock.Sleep(ctx, c.opt.Clock, d) != nil {
			return
		}
	}
}

// eventSent records that the NS took the event that ended the last
// attempt, so a restart does not send it again.
func (c *Controller) eventSent(ctx context.Context, ev api.LocationStatus) {
	c.mu.Lock()
	defer c.mu.Unlock()
	le := c.st.LastEvent
	if le == nil || c.st.EventSent || !le.LastAttempt.Equal(ev.LastAttempt) || le.StoragePath != ev.StoragePath || le.LastStatus != ev.LastStatus {
		return
	}
	c.st.EventSent = true
	if err := c.opt.State.SaveRelocationState(context.WithoutCancel(ctx), c.st); err != nil {
		c.log.Error("save relocation state", "err", err)
	}
}

// cleanEvent replaces, in the free text of an event (its message, the
// packages' reasons), the characters the NS refuses (wharf.CheckText:
// control, format and bidirectional ones, from error messages quoting
// paths) by '?', so the NS never refuses an event for its wording.
func cleanEvent(ev api.LocationStatus) api.LocationStatus {
	ev.Message = wharf.CleanText(ev.Message, maxMessage)
	if len(ev.Packages) > 0 {
		pkgs := make([]api.RelocationPackage, len(ev.Packages))
		for i, p := range ev.Packages {
			p.Reason = wharf.CleanText(p.Reason, maxMessage)
			pkgs[i] = p
		}
		ev.Packages = pkgs
	}
	return ev
}
