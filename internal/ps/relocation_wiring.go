package ps

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/admin"
	"github.com/wharf-project/wharf/internal/ps/fetch"
	"github.com/wharf-project/wharf/internal/ps/place"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/ps/relocation"
	"github.com/wharf-project/wharf/internal/ps/serve"
	"github.com/wharf-project/wharf/internal/ps/store"
)

// How the daemon and the relocation controller (package relocation) fit:
//
//   - the controller's Placer is the rotating placer: it sets the primary
//     location to a target once its prerequisites passed;
//   - its Downloads is the daemon: in exclusive mode new placements wait
//     (pausingPlacer) and configurations are not handed to the fetcher
//     until the attempt ends;
//   - its Serving is the serve.Gate in front of the package handler;
//   - while an attempt runs, configurations are handed to the fetcher with
//     every package of the store still listed, so an unassigned package is
//     removed after the attempt, not from under it (OnIdle re-applies).
var (
	_ relocation.Placer    = (*place.Rotating)(nil)
	_ relocation.Downloads = (*Daemon)(nil)
	_ relocation.Serving   = (*serve.Gate)(nil)
	_ relocation.State     = (*store.Store)(nil)
	_ admin.Relocator      = (*Daemon)(nil)
	_ admin.Metrics        = (*Daemon)(nil)
	_ fetch.Placer         = (*pausingPlacer)(nil)
	_ fetch.Ledger         = (*pausingPlacer)(nil)
)

// pausingPlacer is the placer the fetcher uses: the rotating placer, whose
// Place waits while downloads are paused (exclusive relocation).
type pausingPlacer struct {
	*place.Rotating

	mu     sync.Mutex
	paused chan struct{} // closed when downloads may go on; nil when not paused
}

// Place waits until downloads are not paused (or ctx ends), then places.
func (p *pausingPlacer) Place(ctx context.Context, pkg api.PackageSummary) (string, error) {
	p.mu.Lock()
	wait := p.paused
	p.mu.Unlock()
	if wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return p.Rotating.Place(ctx, pkg)
}

func (p *pausingPlacer) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused == nil {
		p.paused = make(chan struct{})
	}
}

func (p *pausingPlacer) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused != nil {
		close(p.paused)
		p.paused = nil
	}
}

// applied is the fetcher's side of configurations: the last one the loop
// applied, and whether downloads are paused.
type applied struct {
	mu     sync.Mutex
	cfg    api.AgentConfig
	have   bool
	paused bool
}

// applyConfig hands a configuration to the relocation controller (location,
// mode, tasks), then to the fetcher.
func (d *Daemon) applyConfig(ctx context.Context, cfg api.AgentConfig, forced bool) {
	d.mu.Lock()
	ctl := d.reloc
	d.mu.Unlock()
	if ctl != nil {
		ctl.Apply(ctx, relocation.Config{Location: cfg.Settings.StorageLocation, Mode: cfg.Settings.RelocationMode, Tasks: cfg.Tasks})
	}
	d.fetchCfg.mu.Lock()
	d.fetchCfg.cfg, d.fetchCfg.have = cfg, true
	d.fetchCfg.mu.Unlock()
	d.applyFetch(forced)
}

// applyFetch hands the last configuration to the fetcher, unless downloads
// are paused; while a relocation attempt runs, with every package of the
// store kept.
func (d *Daemon) applyFetch(forced bool) {
	d.mu.Lock()
	f, st, ctl := d.fetcher, d.store, d.reloc
	d.mu.Unlock()
	a := &d.fetchCfg
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.have || a.paused || f == nil {
		return
	}
	cfg := a.cfg
	if ctl != nil && ctl.Busy() {
		cfg = keepStored(cfg, st)
	}
	f.Apply(cfg, forced)
}

// keepStored returns cfg with every package of the store added to its list,
// so that the fetcher removes none while a relocation moves them.
func keepStored(cfg api.AgentConfig, st *store.Store) api.AgentConfig {
	listed := make(map[string]bool, len(cfg.Packages))
	for _, p := range cfg.Packages {
		listed[p.ID] = true
	}
	pkgs := cfg.Packages
	for _, p := range st.List() {
		if listed[p.ID] {
			continue
		}
		if len(pkgs) == len(cfg.Packages) {
			pkgs = append([]api.PackageSummary(nil), cfg.Packages...)
		}
		pkgs = append(pkgs, api.PackageSummary{ID: p.ID, Name: p.Name, Version: p.Version, Size: p.Size,
			FileCount: p.FileCount, CustomLocation: p.CustomLocation, Signed: p.Signed})
	}
	cfg.Packages = pkgs
	return cfg
}

// PauseDownloads implements relocation.Downloads: no new download is
// placed and configurations wait until ResumeDownloads. Downloads under way
// finish.
func (d *Daemon) PauseDownloads() {
	d.fetchCfg.mu.Lock()
	d.fetchCfg.paused = true
	d.fetchCfg.mu.Unlock()
	d.mu.Lock()
	p := d.pplacer
	d.mu.Unlock()
	if p != nil {
		p.pause()
	}
}

// ResumeDownloads implements relocation.Downloads.
func (d *Daemon) ResumeDownloads() {
	d.mu.Lock()
	p := d.pplacer
	d.mu.Unlock()
	if p != nil {
		p.resume()
	}
	d.fetchCfg.mu.Lock()
	d.fetchCfg.paused = false
	d.fetchCfg.mu.Unlock()
	d.applyFetch(false)
}

// relocationIdle is the controller's OnIdle: removals held back during the
// attempt may go on, and the NS learns the packages' new paths.
func (d *Daemon) relocationIdle(ctx context.Context, ns fetch.NS) {
	d.applyFetch(false)
	d.mu.Lock()
	s, name := d.store, d.name
	d.mu.Unlock()
	if s == nil {
		return
	}
	var batch []api.PackageState
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if err := ns.PutPackageStates(ctx, name, batch); err != nil {
			d.log.Warn("report the package paths after a relocation attempt", "err", err)
		}
		batch = batch[:0]
	}
	for _, p := range s.List() {
		state, reason := p.Reported()
		batch = append(batch, api.PackageState{PackageID: p.ID, State: state, Reason: reason, Path: p.Path})
		if len(batch) == 1000 {
			flush()
		}
	}
	flush()
}

// RetryRelocation implements admin.Relocator.
func (d *Daemon) RetryRelocation(ctx context.Context) error {
	d.mu.Lock()
	ctl := d.reloc
	d.mu.Unlock()
	if ctl == nil {
		return errors.New("package server is starting")
	}
	return ctl.Retry(ctx)
}

// PlanRelocation implements admin.Relocator.
func (d *Daemon) PlanRelocation(ctx context.Context, path string) (*relocate.Plan, error) {
	d.mu.Lock()
	ctl := d.reloc
	d.mu.Unlock()
	if ctl == nil {
		return nil, errors.New("package server is starting")
	}
	return ctl.Plan(ctx, path)
}

// Metrics implements admin.Metrics: the PS's own registry.
func (d *Daemon) Metrics() http.Handler {
	return promhttp.HandlerFor(d.registry, promhttp.HandlerOpts{})
}

// relocationStatus fills the relocation part of the admin status: the
// relocation state, the store roots and the links of linked packages.
func (d *Daemon) relocationStatus(ctx context.Context, st *admin.Status, s *store.Store, list []store.Package) {
	d.mu.Lock()
	ctl, placer := d.reloc, d.placer
	d.mu.Unlock()
	links, err := s.Links(ctx)
	if err != nil {
		d.log.Warn("status: package links", "err", err)
	}
	roots := map[string]*admin.Location{}
	var order []string
	for _, p := range list {
		l := roots[p.Root]
		if l == nil {
			l = &admin.Location{Root: p.Root, Custom: p.CustomLocation != ""}
			roots[p.Root] = l
			order = append(order, p.Root)
		}
		l.Packages++
		l.Bytes += p.Size
		if links[p.ID] != "" {
			l.Linked++
		}
	}
	sort.Strings(order)
	st.Locations = []admin.Location{}
	for _, r := range order {
		st.Locations = append(st.Locations, *roots[r])
	}
	for i := range st.Packages {
		st.Packages[i].Link = links[st.Packages[i].ID]
	}
	if placer != nil {
		st.Primary = placer.Primary()
	}
	if ctl != nil {
		rs := ctl.Status(ctx)
		st.Relocation = &rs
		st.StoragePath = rs.StoragePath
	}
}
