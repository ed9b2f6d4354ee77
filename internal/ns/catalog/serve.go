package catalog

import (
	"context"
	"errors"
	"time"
)

// Intervals of the catalog's background work.
const (
	// ContactFlushInterval is how often the servers' last contacts, kept
	// in memory, are written: one transaction for all of them (see
	// ContactPrecision).
	ContactFlushInterval = 5 * time.Second
	// ResyncInterval is how often the fleet's memory is checked against
	// the store in full, in case a change from another NS was lost (one
	// that crashed between its commit and its announcement).
	ResyncInterval = 2 * time.Minute
)

// changed makes what a committed write changed known: to this catalog's
// memory first (so the writer's next read sees it), then to every other
// catalog on the store through the notifier. The write stands whatever
// happens here, so failures are logged, not returned: the fleet reloads
// in full at its next poll after a failed reload, and the other NS
// processes at their next resync.
func (c *Catalog) changed(ctx context.Context, ch Change) {
	ch.Origin = c.origin
	ctx = context.WithoutCancel(ctx)
	if err := c.apply(ctx, ch); err != nil {
		c.log.Error("apply a change", "part", ch.Part, "server", ch.Server, "err", err)
	}
	if err := c.notify.Notify(ctx, ch); err != nil {
		c.log.Error("announce a change to the other notification servers", "part", ch.Part, "server", ch.Server, "err", err)
	}
}

// apply brings this catalog's memory in line with a change: the cached
// credentials it concerns are forgotten, the fleet reloads what it names.
func (c *Catalog) apply(ctx context.Context, ch Change) error {
	switch ch.Part {
	case PartClients:
		c.clients.forget()
		return nil
	case PartAdmin:
		c.forgetAdmin()
		return nil
	case PartAll:
		c.clients.forget()
		c.forgetAdmin()
	}
	return c.fleet.apply(ctx, ch)
}

// Serve applies the changes other NS processes announce, writes the
// servers' last contacts every ContactFlushInterval and resyncs the fleet
// every ResyncInterval, until ctx ends; then it writes the last contacts
// once more and returns nil.
func (c *Catalog) Serve(ctx context.Context) error {
	listened := make(chan error, 1)
	go func() {
		listened <- c.notify.Listen(ctx, func(ch Change) {
			if ch.Origin == c.origin && ch.Part != PartAll {
				return // applied before it was announced
			}
			if err := c.apply(ctx, ch); err != nil && ctx.Err() == nil {
				c.log.Error("apply a change from another notification server", "part", ch.Part, "server", ch.Server, "err", err)
			}
		})
	}()
	flush := time.NewTicker(ContactFlushInterval)
	defer flush.Stop()
	resync := time.NewTicker(ResyncInterval)
	defer resync.Stop()
	for {
		select {
		case <-flush.C:
			if err := c.fleet.flushContacts(ctx, false); err != nil && ctx.Err() == nil {
				c.log.Warn("write last contacts", "err", err)
			}
		case <-resync.C:
			if err := c.apply(ctx, Change{Part: PartAll}); err != nil && ctx.Err() == nil {
				c.log.Warn("resync configurations", "err", err)
			}
		case err := <-listened:
			if ctx.Err() == nil {
				c.log.Error("listen for changes", "err", err)
				return errors.Join(err, c.flushOnExit())
			}
			return c.flushOnExit()
		}
	}
}

// flushOnExit writes the last contacts once more, for at most 5 s.
func (c *Catalog) flushOnExit() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.fleet.flushContacts(ctx, true)
}
