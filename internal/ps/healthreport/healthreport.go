// Package healthreport sends a Package Server's health report to the
// Notification Server (POST /agent/{name}/health): the space of every
// volume holding its store — the history the NS forecasts each volume's
// filling from — and its latest link audit. It reports on start, every
// Interval, and soon after each link audit.
//
// A report that cannot be sent waits for the next one: the NS keeps a
// history of samples, and a gap in it only makes its forecast rest on
// fewer points.
package healthreport

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/ps/clock"
	"github.com/wharf-project/wharf/internal/ps/place"
	"github.com/wharf-project/wharf/internal/ps/store"
	"github.com/wharf-project/wharf/internal/ps/volume"
	"github.com/wharf-project/wharf/internal/wharf"
)

// NS takes the reports; *apiclient.Client implements it.
type NS interface {
	PostHealth(ctx context.Context, server string, r api.HealthReport) error
}

// Store is the index in numbers (by root); *store.Store implements it.
type Store interface {
	Summary() store.Summary
}

// Primary names where new downloads go (the volume a relocation target is
// on counts even before a package is there); *place.Rotating implements
// it.
type Primary interface {
	Primary() string
}

// Options configure a Reporter. Server, NS, Store and Facts are required.
type Options struct {
	Server  string
	NS      NS
	Store   Store
	Facts   volume.Facts
	Primary Primary // optional
	// Reserve is storage.reserve: the free space each volume keeps.
	Reserve place.Reserve
	// Interval is the time between two reports; default 1h.
	Interval time.Duration
	Clock    clock.Clock
	Log      *slog.Logger
}

// Reporter sends health reports; safe for concurrent use.
type Reporter struct {
	opt  Options
	log  *slog.Logger
	wake chan struct{}

	mu    sync.Mutex
	links *api.LinkAudit
	older bool // the NS answered 404: an NS older than the route
}

// New returns a Reporter; it sends nothing until Serve.
func New(opt Options) (*Reporter, error) {
	if opt.Server == "" || opt.NS == nil || opt.Store == nil || opt.Facts == nil {
		return nil, errors.New("healthreport: Server, NS, Store and Facts are required")
	}
	if opt.Interval <= 0 {
		opt.Interval = time.Hour
	}
	if opt.Clock == nil {
		opt.Clock = clock.Real{}
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	return &Reporter{opt: opt, log: opt.Log.With("component", "health"), wake: make(chan struct{}, 1)}, nil
}

// SetLinks takes the latest link audit (linkaudit's OnAudit) and has it
// reported soon; it returns at once.
func (r *Reporter) SetLinks(au api.LinkAudit) {
	r.mu.Lock()
	r.links = &au
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Serve reports at once, then every Interval and after each link audit,
// until ctx ends; it returns nil then.
func (r *Reporter) Serve(ctx context.Context) error {
	for {
		r.send(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-r.opt.Clock.After(r.opt.Interval):
		}
	}
}

func (r *Reporter) send(ctx context.Context) {
	rep := r.Report()
	err := r.opt.NS.PostHealth(ctx, r.opt.Server, rep)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err == nil:
		r.older = false
	case ctx.Err() != nil:
	case apiclient.IsStatus(err, 404) && errors.Is(err, wharf.ErrNotFound) && !r.older:
		r.older = true
		r.log.Info("the notification server takes no health reports (an older version); volumes and link audits are not reported to it", "err", err)
	case !r.older:
		r.log.Warn("send the health report; the next goes in an interval", "err", err, "interval", r.opt.Interval)
	}
}

// Report builds a report now: every volume holding an available store
// root, or the primary location, with its space and the PS's bytes there,
// and the latest link audit.
func (r *Reporter) Report() api.HealthReport {
	rep := api.HealthReport{At: r.opt.Clock.Now().UTC()}
	vols := map[string]*api.VolumeUsage{}
	used := map[string]int64{} // bytes of the PS's packages, by volume
	add := func(root string, bytes int64) {
		info, err := r.opt.Facts.Stat(root)
		if err != nil {
			r.log.Debug("volume of a store root", "root", root, "err", err)
			return
		}
		v := vols[info.Root]
		if v == nil {
			if len(vols) >= api.MaxHealthVolumes {
				return
			}
			v = &api.VolumeUsage{Volume: info.Root, TotalMB: int64(info.TotalBytes >> 20), FreeMB: int64(info.AvailBytes >> 20),
				ReserveMB: int64(r.opt.Reserve.Of(info.TotalBytes) >> 20)}
			vols[info.Root] = v
		}
		used[info.Root] += bytes
		if !slices.Contains(v.Roots, root) {
			v.Roots = append(v.Roots, root)
		}
	}
	for _, root := range r.opt.Store.Summary().Roots {
		if root.Unavailable == "" {
			add(root.Root, root.Bytes)
		}
	}
	if r.opt.Primary != nil {
		if p := r.opt.Primary.Primary(); p != "" {
			add(p, 0)
		}
	}
	for vol, v := range vols {
		v.UsedMB = (used[vol] + 1<<20 - 1) >> 20
		slices.Sort(v.Roots)
		rep.Volumes = append(rep.Volumes, *v)
	}
	slices.SortFunc(rep.Volumes, func(a, b api.VolumeUsage) int { return strings.Compare(a.Volume, b.Volume) })
	r.mu.Lock()
	if r.links != nil {
		cp := *r.links
		rep.Links = &cp
	}
	r.mu.Unlock()
	return rep
}
