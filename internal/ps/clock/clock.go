// Package clock is the Package Server's seam for time: retry backoffs,
// long-poll pacing and report batching take a Clock so tests advance time
// instead of sleeping.
package clock

import (
	"context"
	"math/rand/v2"
	"time"
)

// Clock tells the time and waits. Implementations are safe for concurrent
// use.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives the time once d has passed.
	After(d time.Duration) <-chan time.Time
}

// Real is the wall clock.
type Real struct{}

var _ Clock = Real{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// After is time.After.
func (Real) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Sleep waits d on c, or until ctx ends; it returns ctx.Err() then.
func Sleep(ctx context.Context, c Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c.After(d):
		return nil
	}
}

// Backoff is an exponential backoff with full jitter: the delay before retry
// n (0-based) is a random duration in [Base·2ⁿ/2, Base·2ⁿ], capped at Max.
type Backoff struct {
	Base, Max time.Duration
}

// Delay returns the delay before retry n.
func (b Backoff) Delay(n int) time.Duration {
	d := b.Base
	for i := 0; i < n && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}
