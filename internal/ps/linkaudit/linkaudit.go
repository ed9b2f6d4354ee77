// Package linkaudit checks the links of a Package Server's store. A
// relocation that cannot move a package leaves it whole at its old place
// and makes a link at the new location to it (SPEC §6.2); the store is
// then only as good as those links. An audit looks at every package the
// state DB says is behind a link and finds what went wrong since:
//
//   - the link is gone (api.LinkMissing): the package is still served from
//     its folder, the new location is not complete;
//   - the link leads elsewhere than to the package's folder (api.LinkStale):
//     the package drifted, for instance onto a rotated volume;
//   - the package's folder is on a store root that is unavailable
//     (api.LinkTargetUnavailable): its volume is not mounted or lost its
//     marker, so the package is not served;
//   - the package's folder is gone though its root is there
//     (api.LinkTargetMissing).
//
// An audit only reads: it never repairs. A retry relocation mends the
// first two (the package is moved to the link's place, or linked again)
// and, once the volume is back, the third. The Auditor runs one on start
// and then every Interval (Serve); the latest is what the Package
// Location Status events, the health reports and `wharf ps status` carry.
package linkaudit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/clock"
	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/ps/store"
)

// Index lists the packages behind a link; *store.Store implements it.
type Index interface {
	// LinkedPackages returns the packages whose Link is set, with the
	// availability of their root (Unavailable).
	LinkedPackages() []store.Package
}

// Markers tells whether a store root carries this server's marker, the
// sign its volume is mounted; *storeroot.Roots implements it.
type Markers interface {
	HasMarker(root string) (bool, error)
}

// Roots re-checks the availability of the store roots; *fetch.Fetcher
// implements it (the owner of that availability: it stops and resumes
// serving and downloads).
type Roots interface {
	// CheckRoots asks for the markers to be checked again soon; it
	// returns at once.
	CheckRoots()
}

// Options configure an Auditor. Index, FS and Markers are required.
type Options struct {
	Index   Index
	FS      fsys.FS
	Markers Markers
	// Roots, optional, is told when an audit sees a root's marker come
	// back or go before the index knows.
	Roots Roots
	// Interval is the time between two audits after the first; default
	// 1h.
	Interval time.Duration
	// Clock, optional, paces the audits; default the wall clock.
	Clock clock.Clock
	Log   *slog.Logger
	// Registry, optional, gets wharf_ps_link_problems.
	Registry prometheus.Registerer
	// OnAudit, optional, is called after every audit (the health
	// reporter sends it to the NS), on the auditor's goroutine.
	OnAudit func(api.LinkAudit)
}

// Auditor audits the links; safe for concurrent use.
type Auditor struct {
	opt  Options
	log  *slog.Logger
	wake chan struct{}
	gaug *prometheus.GaugeVec

	mu     sync.Mutex
	latest *api.LinkAudit
}

// New returns an Auditor; it touches nothing.
func New(opt Options) (*Auditor, error) {
	if opt.Index == nil || opt.FS == nil || opt.Markers == nil {
		return nil, errors.New("linkaudit: Index, FS and Markers are required")
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
	a := &Auditor{opt: opt, log: opt.Log.With("component", "linkaudit"), wake: make(chan struct{}, 1)}
	if opt.Registry != nil {
		a.gaug = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wharf_ps_link_problems",
			Help: "Problems the last link audit found with the packages left behind links, by kind (link-missing, link-stale, target-unavailable, target-missing).",
		}, []string{"kind"})
		opt.Registry.MustRegister(a.gaug)
	}
	return a, nil
}

// kinds are the problem kinds, in the order they are reported.
var kinds = []string{api.LinkTargetUnavailable, api.LinkTargetMissing, api.LinkMissing, api.LinkStale}

// Latest returns the latest audit, nil before the first.
func (a *Auditor) Latest() *api.LinkAudit {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.latest == nil {
		return nil
	}
	cp := *a.latest
	return &cp
}

// Poke asks for an audit now (after a relocation attempt ended, or when a
// root's availability changed); it returns at once.
func (a *Auditor) Poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// recheckDelay is how soon an audit that saw a root's availability change
// before the index knew runs again, once the fetcher looked.
const recheckDelay = 5 * time.Second

// Serve audits at once, then every Interval and when poked, until ctx
// ends; it returns nil then.
func (a *Auditor) Serve(ctx context.Context) error {
	for {
		wait := a.opt.Interval
		if a.run(ctx) {
			wait = min(wait, recheckDelay)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-a.wake:
		case <-a.opt.Clock.After(wait):
		}
	}
}

// run audits, keeps and reports the result; it reports whether a root's
// availability changed before the index knew (then Roots rechecks it).
func (a *Auditor) run(ctx context.Context) (changed bool) {
	if ctx.Err() != nil {
		return false
	}
	au, changed := a.audit(ctx)
	if ctx.Err() != nil {
		return false // cut short: not an audit of every link
	}
	if changed && a.opt.Roots != nil {
		a.opt.Roots.CheckRoots()
	}
	a.mu.Lock()
	prev := a.latest
	a.latest = &au
	a.mu.Unlock()
	if a.gaug != nil {
		for _, k := range kinds {
			a.gaug.WithLabelValues(k).Set(float64(au.Counts[k]))
		}
	}
	n := len(au.Problems) + au.ProblemsOmitted
	switch {
	case n > 0:
		a.log.Warn("link audit: packages left behind links have problems", "links", au.Links, "problems", n,
			"target_unavailable", au.Counts[api.LinkTargetUnavailable], "target_missing", au.Counts[api.LinkTargetMissing],
			"link_missing", au.Counts[api.LinkMissing], "link_stale", au.Counts[api.LinkStale])
	case prev != nil && len(prev.Problems)+prev.ProblemsOmitted > 0:
		a.log.Info("link audit: every link is sound again", "links", au.Links)
	default:
		a.log.Debug("link audit", "links", au.Links)
	}
	if a.opt.OnAudit != nil {
		a.opt.OnAudit(au)
	}
	return changed
}

// Audit checks every package behind a link once and returns what it found.
// It only reads the file system: a Readlink and a Stat or two per package,
// and one marker check per root.
func (a *Auditor) Audit(ctx context.Context) api.LinkAudit {
	au, _ := a.audit(ctx)
	return au
}

// audit is Audit; changed reports a root whose marker says otherwise than
// the index's availability.
func (a *Auditor) audit(ctx context.Context) (au api.LinkAudit, changed bool) {
	au = api.LinkAudit{At: a.opt.Clock.Now().UTC(), Counts: map[string]int{}}
	marked := map[string]string{} // root → why it is unavailable, "" when it is fine
	rootState := func(p store.Package) string {
		why, ok := marked[p.Root]
		if !ok {
			has, err := a.opt.Markers.HasMarker(p.Root)
			switch {
			case err != nil:
				why = err.Error()
			case !has:
				why = fmt.Sprintf("store root %s has no marker (volume not mounted?)", p.Root)
			}
			marked[p.Root] = why
		}
		switch {
		case why != "" && p.Unavailable == "":
			changed = true // gone: not served as soon as the fetcher sees it
		case why == "" && p.Unavailable != "":
			changed = true // back: served again once the fetcher sees it
			why = p.Unavailable + "; the volume is back, it is served again once the Package Server has checked its store roots"
		}
		return why
	}
	for _, p := range a.opt.Index.LinkedPackages() {
		if ctx.Err() != nil {
			break
		}
		au.Links++
		kind, detail := a.check(p, rootState)
		if kind == "" {
			continue
		}
		au.Counts[kind]++
		if len(au.Problems) >= api.MaxLinkProblems {
			au.ProblemsOmitted++
			continue
		}
		au.Problems = append(au.Problems, api.LinkProblem{PackageID: p.ID, Name: p.Name, Version: p.Version,
			Kind: kind, Link: p.Link, Folder: p.Path, Detail: detail})
	}
	if len(au.Counts) == 0 {
		au.Counts = nil
	}
	return au, changed
}

// check audits one package behind a link: its folder first (a package that
// is not served matters most), then the link.
func (a *Auditor) check(p store.Package, rootState func(store.Package) string) (kind, detail string) {
	if why := rootState(p); why != "" {
		return api.LinkTargetUnavailable, fmt.Sprintf("the package is not served: %s", why)
	}
	switch fi, err := a.opt.FS.Stat(p.Path); {
	case errors.Is(err, fs.ErrNotExist):
		return api.LinkTargetMissing, fmt.Sprintf("the package's folder %s is gone, though its store root is there", p.Path)
	case err != nil:
		return api.LinkTargetMissing, fmt.Sprintf("the package's folder %s cannot be read: %v", p.Path, err)
	case !fi.IsDir():
		return api.LinkTargetMissing, fmt.Sprintf("%s is not a folder", p.Path)
	}
	fi, err := a.opt.FS.Lstat(p.Link)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return api.LinkMissing, fmt.Sprintf("no link at %s: the package is served from %s, but the new location lacks it", p.Link, p.Path)
	case err != nil:
		return api.LinkMissing, fmt.Sprintf("the link %s cannot be read: %v", p.Link, err)
	case !fsys.IsLink(fi):
		return api.LinkStale, fmt.Sprintf("%s is not a link but a %s; the package is at %s", p.Link, fi.Mode().Type(), p.Path)
	}
	target, err := a.opt.FS.Readlink(p.Link)
	if err != nil {
		return api.LinkMissing, fmt.Sprintf("the link %s cannot be read: %v", p.Link, err)
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(filepath.Dir(p.Link), target)
	}
	if !samePath(target, p.Path) {
		return api.LinkStale, fmt.Sprintf("the link %s leads to %s, but the package is at %s", p.Link, target, p.Path)
	}
	return "", ""
}

// samePath compares two paths after cleaning, without regard to case on
// Windows (a junction's target may carry a \??\ or \\?\ prefix there).
func samePath(a, b string) bool {
	trim := func(s string) string {
		for _, pre := range []string{`\??\`, `\\?\`} {
			s = strings.TrimPrefix(s, pre)
		}
		return filepath.Clean(s)
	}
	a, b = trim(a), trim(b)
	if runtime.GOOS == "windows" {
		return strings.EqualFold(a, b)
	}
	return a == b
}
