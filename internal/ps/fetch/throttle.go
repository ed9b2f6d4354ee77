package fetch

import (
	"context"
	"sync"

	"golang.org/x/time/rate"

	"github.com/wharf-project/wharf/internal/ps/clock"
)

// throttle limits the rate of all downloads together to the configuration's
// download bandwidth. It reads the time from the injected clock, so tests
// see its waits without sleeping.
type throttle struct {
	clock clock.Clock

	mu  sync.Mutex
	bps int64
	lim *rate.Limiter // nil: no limit
}

// Read sizes: without a limit, and the bounds of the burst with one (a
// tenth of a second's worth, so a low limit still moves bytes steadily).
const (
	copyChunk = 256 << 10
	minBurst  = 16 << 10
)

// set changes the limit; 0 or less means none.
func (t *throttle) set(bps int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if bps == t.bps {
		return
	}
	t.bps = bps
	if bps <= 0 {
		t.lim = nil
		return
	}
	burst := int(min(max(bps/10, minBurst), copyChunk))
	t.lim = rate.NewLimiter(rate.Limit(bps), burst)
	// Start empty, so the first bytes are paced as well.
	t.lim.ReserveN(t.clock.Now(), burst)
}

// chunk returns how many bytes to read at a time.
func (t *throttle) chunk() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lim == nil {
		return copyChunk
	}
	return t.lim.Burst()
}

// wait blocks until n more bytes may be taken.
func (t *throttle) wait(ctx context.Context, n int) error {
	t.mu.Lock()
	lim := t.lim
	t.mu.Unlock()
	if lim == nil {
		return nil
	}
	now := t.clock.Now()
	r := lim.ReserveN(now, min(n, lim.Burst()))
	if !r.OK() {
		return nil
	}
	return clock.Sleep(ctx, t.clock, r.DelayFrom(now))
}
