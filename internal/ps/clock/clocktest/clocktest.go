// Package clocktest has the two test clocks of the Package Server's parts
// (clock.Clock): Instant, whose waits are over at once, so code that backs
// off runs without sleeping; and Manual, which stands still until a test
// advances it, so timers fire exactly when the test says.
package clocktest

import (
	"slices"
	"sync"
	"time"

	"github.com/wharf-project/wharf/internal/ps/clock"
)

// start is where both clocks begin: a fixed time, so logs and events of a
// test run are the same every time.
var start = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Instant is a clock whose After fires at once and moves Now forward by
// the duration asked. It records every wait.
type Instant struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

var _ clock.Clock = (*Instant)(nil)

// NewInstant returns an instant clock at a fixed time.
func NewInstant() *Instant { return &Instant{now: start} }

// Now returns the clock's time.
func (c *Instant) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After advances the clock by d and returns a channel that has fired.
func (c *Instant) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	c.now = c.now.Add(max(d, 0))
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// Advance moves the clock forward by d.
func (c *Instant) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Waits returns every duration After was asked for.
func (c *Instant) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.waits)
}

// Manual is a clock that stands still until Advance; After fires once the
// clock reaches its time (at once for d <= 0).
type Manual struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

var _ clock.Clock = (*Manual)(nil)

// NewManual returns a manual clock at a fixed time.
func NewManual() *Manual { return &Manual{now: start} }

// Now returns the clock's time.
func (c *Manual) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After returns a channel that receives the time once the clock has been
// advanced d past now.
func (c *Manual) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{c.now.Add(d), ch})
	return ch
}

// Advance moves the clock forward by d and fires the waits that are due.
func (c *Manual) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
			continue
		}
		keep = append(keep, w)
	}
	c.waiters = keep
}

// Waiting returns how many After waits are pending (a test advances the
// clock once the code under test waits on it).
func (c *Manual) Waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}
