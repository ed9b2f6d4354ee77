package fetch

import (
	"context"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/clock"
	"github.com/wharf-project/wharf/internal/wharf"
)

// reporter sends package states to the NS in batches: put queues a state
// (the latest per package wins), and serve sends what is queued after a
// short delay, retrying with backoff while the NS cannot be reached. A state
// equal to the last one sent for that package is not sent again.
type reporter struct {
	ns      NS
	server  string
	clock   clock.Clock
	delay   time.Duration
	backoff clock.Backoff
	log     *slog.Logger
	wake    chan struct{}

	mu      sync.Mutex
	pending map[string]api.PackageState
	sent    map[string]api.PackageState
}

func newReporter(ns NS, server string, c clock.Clock, delay time.Duration, b clock.Backoff, log *slog.Logger) *reporter {
	return &reporter{
		ns: ns, server: server, clock: c, delay: delay, backoff: b, log: log,
		wake:    make(chan struct{}, 1),
		pending: map[string]api.PackageState{},
		sent:    map[string]api.PackageState{},
	}
}

// Limits of one report: states per request, and bytes of a reason.
const (
	maxBatch  = 1000
	maxReason = 1000
)

func (r *reporter) put(s api.PackageState) {
	if len(s.Reason) > maxReason {
		s.Reason = strings.ToValidUTF8(s.Reason[:maxReason-3], "") + "..."
	}
	// The NS refuses control, format and bidirectional characters, which
	// an error message may quote from a path.
	s.Reason = wharf.CleanText(s.Reason, 0)
	r.mu.Lock()
	if last, ok := r.sent[s.PackageID]; ok && same(last, s) {
		delete(r.pending, s.PackageID)
		r.mu.Unlock()
		return
	}
	r.pending[s.PackageID] = s
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// forget drops what is known of a package that was removed, so a later
// download of it is reported afresh.
func (r *reporter) forget(id string) {
	r.mu.Lock()
	delete(r.pending, id)
	delete(r.sent, id)
	r.mu.Unlock()
}

func same(a, b api.PackageState) bool {
	return a.State == b.State && a.Reason == b.Reason && a.Path == b.Path
}

func (r *reporter) serve(ctx context.Context) {
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		if clock.Sleep(ctx, r.clock, r.delay) != nil {
			return
		}
		for {
			r.mu.Lock()
			batch := make([]api.PackageState, 0, len(r.pending))
			for _, s := range r.pending {
				batch = append(batch, s)
			}
			sort.Slice(batch, func(i, j int) bool { return batch[i].PackageID < batch[j].PackageID })
			batch = batch[:min(len(batch), maxBatch)]
			for _, s := range batch {
				delete(r.pending, s.PackageID)
			}
			r.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			err := r.ns.PutPackageStates(ctx, r.server, batch)
			if err != nil && !transient(err) && ctx.Err() == nil {
				// Sending the same again cannot help; drop it loudly.
				r.log.Error("the NS refused package states; dropped", "err", err, "count", len(batch))
				err = nil
			}
			r.mu.Lock()
			if err == nil {
				for _, s := range batch {
					r.sent[s.PackageID] = s
				}
			} else {
				for _, s := range batch {
					if _, newer := r.pending[s.PackageID]; !newer {
						r.pending[s.PackageID] = s
					}
				}
			}
			r.mu.Unlock()
			if err == nil {
				failures = 0
				continue // whatever was queued meanwhile
			}
			if ctx.Err() != nil {
				return
			}
			d := r.backoff.Delay(failures)
			failures++
			r.log.Warn("report package states", "err", err, "count", len(batch), "retry_in", d)
			if clock.Sleep(ctx, r.clock, d) != nil {
				return
			}
		}
	}
}
