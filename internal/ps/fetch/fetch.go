// Package fetch keeps a Package Server's disk in line with its
// configuration: it downloads every assigned package that is not ready,
// removes every package that is no longer assigned, watches the store roots'
// markers, and reports package states to the Notification Server.
//
// # Download protocol
//
// A package is absent or whole in its store root, never half there:
//
//  1. The manifest is fetched (GET /agent/{name}/packages/{id}) and
//     checked; the Placer picks the store root (the primary location, a
//     rotated root on another volume, or the package's custom location;
//     see package place) before anything is written, so a package that
//     finds no room fails with nothing on disk; the package is recorded in
//     the state DB as downloading, with its files.
//  2. Each file is downloaded into <root>/.wharf-tmp/<id>/<path>, on the
//     destination volume, hashing while writing; a file whose SHA-256 or
//     size does not match the manifest is discarded. Complete files are
//     fsynced.
//  3. The folders of the temporary tree are fsynced, the tree is renamed to
//     <root>/<id>, and <root> is fsynced.
//  4. The package is recorded ready, with each file's modification time.
//
// A restart resumes: a file partly written continues with a Range request
// from its current size, after the bytes on disk were hashed again. A crash
// between steps 3 and 4 leaves a whole folder in place that the DB does not
// call ready; Recover hashes it and records it ready (or discards it).
//
// A download that runs out of disk space anyway (something else filled the
// volume) is discarded: its temporary folder is removed and the DB forgets
// it, so the next attempt is placed again. Packages that failed for want of
// space are tried again after their backoff, and at once when the settings
// change or an unassigned package was removed.
//
// A package that is no longer assigned is renamed into <root>/.wharf-trash,
// forgotten by the DB, then removed. Nothing in a store root whose marker is
// missing is downloaded, removed or served: its packages are unavailable
// until the marker reappears (see package store).
//
// Every disk operation goes through the store roots' layout
// (storeroot.Roots) over fsys.FS: the names in a root, its marker, the
// staging folder of a download and the trash are storeroot's, and the crash
// matrix of this package crashes a download at every file-system operation.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/clock"
	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/ps/store"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/wharf"
)

// NS is what the fetcher needs of the Notification Server;
// *apiclient.Client implements it. Errors that wrap wharf.ErrNotFound mean
// the package is not (or no longer) assigned to this PS; *apiclient.Error
// with a 5xx status and errors without a status (network) are transient.
type NS interface {
	AgentPackage(ctx context.Context, name, id string) (api.Package, error)
	OpenBlob(ctx context.Context, d wharf.Digest, offset int64) (io.ReadCloser, error)
	PutPackageStates(ctx context.Context, name string, states []api.PackageState) error
}

// Placer decides where a new package is stored. Place is called once per
// package, before anything of it is written, from the fetcher's goroutines
// (so concurrently); pkg.Size and pkg.FileCount are those of the checked
// manifest. The package stays in the returned root afterwards (a package
// whose download ran out of disk space is the exception: it is discarded
// and placed again). The root is an absolute folder, created when missing.
// An error fails the package with the error as reason; it is tried again
// after a backoff, and sooner after a change of the settings or the removal
// of a package when the error wraps wharf.ErrNoSpace.
type Placer interface {
	Place(ctx context.Context, pkg api.PackageSummary) (root string, err error)
}

// Ledger is implemented by a Placer that counts the space downloads in
// flight will take (place.Rotating). Place holds that space; the fetcher
// calls Hold for a download that resumes in the root it has (it is not
// placed again), and Release once a download attempt ended, whatever its
// outcome, for every package it called Place or Hold for. Both are called
// from the fetcher's goroutines, concurrently.
type Ledger interface {
	Hold(pkg api.PackageSummary, root string)
	Release(id string)
}

// Options configure a Fetcher.
type Options struct {
	// Roots is the layout of this PS's store roots: the file system the
	// packages are written to, and this PS's name (NS calls, markers).
	Roots  *storeroot.Roots
	NS     NS
	Store  *store.Store
	Placer Placer
	Clock  clock.Clock  // default clock.Real
	Logger *slog.Logger // default: discard

	// FileAttempts is how often a file is tried on transient (network,
	// 5xx) errors before its package fails. Default 6.
	FileAttempts int
	// RetryBackoff paces those attempts. Default 1s doubling to 30s.
	RetryBackoff clock.Backoff
	// FailedBackoff paces new attempts at a failed package, counted per
	// package. Default 30s doubling to 15m. Apply with force resets it.
	FailedBackoff clock.Backoff
	// ReportDelay batches state reports: a report waits this long for more.
	// Default 200ms.
	ReportDelay time.Duration
}

// DefaultConcurrency is the number of packages downloaded at once when the
// configuration does not say.
const DefaultConcurrency = 4

// Fetcher reconciles the disk with the configuration. Create it with New,
// call Recover once, then run Serve and feed it configurations with Apply.
type Fetcher struct {
	opt    Options
	roots  *storeroot.Roots
	fs     fsys.FS
	server string
	log    *slog.Logger
	wake   chan struct{}
	rep    *reporter
	thr    *throttle

	rootMu sync.Mutex // serializes prepareRoot

	mu          sync.Mutex
	haveConfig  bool
	settings    api.AgentSettings // of the last Apply
	desired     map[string]api.PackageSummary
	order       []string // desired ids in configuration order
	concurrency int
	running     map[string]*job
	failures    map[string]*failure
	holds       int // HoldRemovals calls not yet released

	// Work proportional to what changed: queue holds the ids of the
	// configuration still to look at for a download, in configuration
	// order, from head on; it is rebuilt (O(packages)) only when the
	// configuration, a root's availability or the store changed under it
	// (requeue), and a finished download costs O(1). scanRemovals asks
	// the next reconcile to look for packages to remove (O(packages)),
	// set by the same events.
	queue        []string
	head         int
	requeue      bool
	scanRemovals bool
}

type job struct {
	root   string // "" until placed
	cancel context.CancelFunc
}

type failure struct {
	attempts int
	next     time.Time
	reason   string
	pkg      api.PackageSummary
	noSpace  bool // for want of disk space
}

// New returns a Fetcher; it does nothing until Serve runs.
func New(opt Options) *Fetcher {
	if opt.Clock == nil {
		opt.Clock = clock.Real{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.FileAttempts <= 0 {
		opt.FileAttempts = 6
	}
	if opt.RetryBackoff.Base <= 0 {
		opt.RetryBackoff = clock.Backoff{Base: time.Second, Max: 30 * time.Second}
	}
	if opt.FailedBackoff.Base <= 0 {
		opt.FailedBackoff = clock.Backoff{Base: 30 * time.Second, Max: 15 * time.Minute}
	}
	if opt.ReportDelay <= 0 {
		opt.ReportDelay = 200 * time.Millisecond
	}
	log := opt.Logger.With("component", "fetch")
	f := &Fetcher{
		opt:         opt,
		roots:       opt.Roots,
		fs:          opt.Roots.FS(),
		server:      opt.Roots.Server(),
		log:         log,
		wake:        make(chan struct{}, 1),
		desired:     map[string]api.PackageSummary{},
		concurrency: DefaultConcurrency,
		running:     map[string]*job{},
		failures:    map[string]*failure{},
	}
	f.thr = &throttle{clock: opt.Clock}
	f.rep = newReporter(opt.NS, f.server, opt.Clock, opt.ReportDelay, opt.RetryBackoff, log)
	return f
}

// Apply sets the configuration to reconcile with and wakes the fetcher: the
// packages to have, the download concurrency and bandwidth. With
// force, failed packages are tried again at once instead of after their
// backoff; so are packages that failed for want of space when the settings
// changed (a policy may now allow more volumes). Packages with an invalid
// id are ignored (and logged). Until the first Apply, the fetcher removes
// nothing.
func (f *Fetcher) Apply(cfg api.AgentConfig, force bool) {
	desired := make(map[string]api.PackageSummary, len(cfg.Packages))
	order := make([]string, 0, len(cfg.Packages))
	for _, p := range cfg.Packages {
		if _, err := wharf.ParsePackageID(p.ID); err != nil {
			f.log.Error("ignoring package of the configuration", "package", p.ID, "err", err)
			continue
		}
		if _, dup := desired[p.ID]; !dup {
			order = append(order, p.ID)
		}
		desired[p.ID] = p
	}
	f.thr.set(cfg.Settings.DownloadBandwidth)
	f.mu.Lock()
	f.haveConfig = true
	f.desired, f.order = desired, order
	f.requeue, f.scanRemovals = true, true
	f.concurrency = cfg.Settings.DownloadConcurrency
	if f.concurrency <= 0 {
		f.concurrency = DefaultConcurrency
	}
	settingsChanged := cfg.Settings != f.settings
	f.settings = cfg.Settings
	for _, fl := range f.failures {
		if force || settingsChanged && fl.noSpace {
			fl.next = time.Time{}
		}
	}
	f.mu.Unlock()
	f.poke()
}

// retryNoSpaceLocked makes the packages that failed for want of space eligible
// for a new attempt at once: space may have been freed. Called with f.mu
// held.
func (f *Fetcher) retryNoSpaceLocked() {
	for _, fl := range f.failures {
		if fl.noSpace {
			fl.next = time.Time{}
		}
	}
}

func (f *Fetcher) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// CheckRoots has the fetcher check the markers of the store roots again
// soon (the link audit saw one come back or go); it returns at once.
func (f *Fetcher) CheckRoots() { f.poke() }

// HoldRemovals keeps every package in the store until ReleaseRemovals: an
// unassigned package is not removed (a relocation is moving the store, and
// must not find a package gone from under it). Calls nest.
func (f *Fetcher) HoldRemovals() {
	f.mu.Lock()
	f.holds++
	f.mu.Unlock()
}

// ReleaseRemovals ends a HoldRemovals: the removals held back go on, and
// the state of every package, with its folder, is reported to the NS again
// (a relocation moved them).
func (f *Fetcher) ReleaseRemovals() {
	f.mu.Lock()
	if f.holds > 0 {
		f.holds--
	}
	f.scanRemovals = true
	f.mu.Unlock()
	f.reportAll(func(store.Package) bool { return true })
	f.poke()
}

// Failure is a package of the configuration that is not in the store
// because it could not even start (no manifest, no place).
type Failure struct {
	Package api.PackageSummary
	Reason  string
}

// Failures lists the packages of the configuration that failed before they
// were recorded in the store, sorted by id.
func (f *Fetcher) Failures() []Failure {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Failure
	for id, fl := range f.failures {
		if _, ok := f.opt.Store.Get(id); ok || fl.reason == "" {
			continue
		}
		out = append(out, Failure{Package: fl.pkg, Reason: fl.reason})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Package.ID < out[j].Package.ID })
	return out
}

// Serve reconciles until ctx ends, then cancels the downloads in flight
// (they resume at the next start) and returns nil once they stopped. It
// first checks that every ready package's files are there (see Recover)
// and reports the state of every package in the store.
func (f *Fetcher) Serve(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f.rep.serve(ctx)
	}()
	f.checkAllReady(ctx)
	f.reportAll(func(store.Package) bool { return true })
	jobs := &sync.WaitGroup{}
	for {
		f.reconcile(ctx, jobs)
		select {
		case <-ctx.Done():
			f.mu.Lock()
			for _, j := range f.running {
				j.cancel()
			}
			f.mu.Unlock()
			jobs.Wait()
			wg.Wait()
			return nil
		case <-f.wake:
		}
	}
}

// reconcile runs on Serve's goroutine only.
func (f *Fetcher) reconcile(ctx context.Context, jobs *sync.WaitGroup) {
	if ctx.Err() != nil {
		return
	}
	f.checkRoots(ctx)

	// Removals, without holding f.mu during the disk work (Apply stays
	// quick). Downloads start only here, so none starts meanwhile.
	f.mu.Lock()
	if !f.haveConfig {
		f.mu.Unlock()
		return
	}
	var remove []store.Package
	if f.scanRemovals {
		f.scanRemovals = false
		for _, p := range f.opt.Store.List() {
			if _, ok := f.desired[p.ID]; ok || f.holds > 0 && p.State == api.StateReady {
				continue // assigned, or held while a relocation may move it
			}
			if j := f.running[p.ID]; j != nil {
				j.cancel() // its end wakes us and asks for this scan again
				continue
			}
			if p.Unavailable != "" {
				continue // removed when its root is back
			}
			remove = append(remove, p)
		}
	}
	f.mu.Unlock()
	removed := false
	for _, p := range remove {
		if err := f.remove(ctx, p); err != nil {
			f.log.Error("remove unassigned package", "package", p.ID, "path", p.Path, "err", err)
			continue
		}
		removed = true
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if removed {
		f.retryNoSpaceLocked()
	}
	for id, j := range f.running {
		if _, ok := f.desired[id]; !ok {
			j.cancel()
		}
	}
	for id := range f.failures {
		if _, ok := f.desired[id]; !ok {
			delete(f.failures, id)
		}
	}
	if f.requeue {
		f.requeue = false
		f.queue, f.head = f.queue[:0], 0
		for _, id := range f.order {
			if f.needsDownload(id) {
				f.queue = append(f.queue, id)
			}
		}
	}
	// Downloads: failed packages whose backoff is over, in configuration
	// order, then the queue.
	now := f.opt.Clock.Now()
	var due []string
	for id, fl := range f.failures {
		if !now.Before(fl.next) && f.running[id] == nil {
			due = append(due, id)
		}
	}
	if len(due) > 1 {
		pos := make(map[string]int, len(due))
		for _, id := range due {
			pos[id] = -1
		}
		for i, id := range f.order {
			if _, ok := pos[id]; ok {
				pos[id] = i
			}
		}
		sort.Slice(due, func(i, j int) bool { return pos[due[i]] < pos[due[j]] })
	}
	for _, id := range due {
		if len(f.running) >= f.concurrency {
			return
		}
		if f.needsDownload(id) {
			f.startLocked(ctx, jobs, id)
		}
	}
	for f.head < len(f.queue) && len(f.running) < f.concurrency {
		id := f.queue[f.head]
		f.head++
		if fl := f.failures[id]; fl != nil && now.Before(fl.next) {
			continue // started again from f.failures when its backoff is over
		}
		if f.running[id] == nil && f.needsDownload(id) {
			f.startLocked(ctx, jobs, id)
		}
	}
	if f.head == len(f.queue) {
		f.queue, f.head = f.queue[:0], 0
	}
}

// needsDownload reports whether package id of the configuration is to be
// downloaded: assigned, and not ready in the store nor on an unavailable
// root. Called with f.mu held.
func (f *Fetcher) needsDownload(id string) bool {
	if _, ok := f.desired[id]; !ok {
		return false
	}
	state, unavailable, ok := f.opt.Store.State(id)
	return !ok || state != api.StateReady && unavailable == ""
}

// startLocked starts the download of package id. Called with f.mu held.
func (f *Fetcher) startLocked(ctx context.Context, jobs *sync.WaitGroup, id string) {
	jctx, cancel := context.WithCancel(ctx)
	j := &job{cancel: cancel}
	if root, ok := f.opt.Store.RootOf(id); ok {
		j.root = root
	}
	f.running[id] = j
	sum := f.desired[id]
	jobs.Add(1)
	go func() {
		defer jobs.Done()
		defer cancel()
		ok := f.runJob(jctx, sum)
		f.mu.Lock()
		delete(f.running, id)
		if !ok {
			// Stopped or failed: look at it again (a failure waits for
			// its backoff in f.failures; an unassigned one is removed).
			f.queue = append(f.queue, id)
			f.scanRemovals = true
		}
		f.mu.Unlock()
		f.poke()
	}()
}

// runJob downloads one package and records the outcome; it reports
// whether the package is ready.
func (f *Fetcher) runJob(ctx context.Context, sum api.PackageSummary) (ready bool) {
	log := f.log.With("package", sum.ID)
	err := f.download(ctx, sum, log)
	if l, ok := f.opt.Placer.(Ledger); ok {
		l.Release(sum.ID)
	}
	if err != nil && ctx.Err() == nil && diskFull(err) {
		err = f.discardFull(context.WithoutCancel(ctx), sum.ID, err, log)
	}
	if ctx.Err() != nil {
		log.Info("download stopped", "reason", context.Cause(ctx))
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.failures, sum.ID)
		return true
	}
	fl := f.failures[sum.ID]
	if fl == nil {
		fl = &failure{}
		f.failures[sum.ID] = fl
	}
	fl.pkg, fl.reason, fl.noSpace = sum, err.Error(), errors.Is(err, wharf.ErrNoSpace) || diskFull(err)
	fl.next = f.opt.Clock.Now().Add(f.opt.FailedBackoff.Delay(fl.attempts))
	fl.attempts++
	if errors.Is(err, errUnassigned) {
		// Most likely the next configuration drops it; if the NS keeps
		// listing it, try again after the backoff. Nothing to report.
		log.Info("the NS does not give out this package (no longer assigned?); not downloading it", "retry_at", fl.next)
		return false
	}
	log.Error("download failed", "err", err, "attempt", fl.attempts, "retry_at", fl.next)
	if p, ok := f.opt.Store.Get(sum.ID); ok {
		if serr := f.opt.Store.SetState(context.WithoutCancel(ctx), sum.ID, api.StateFailed, err.Error(), f.opt.Clock.Now()); serr != nil {
			log.Error("record failure", "err", serr)
		}
		p.State, p.Reason = api.StateFailed, err.Error()
		f.reportPackage(p)
	} else {
		f.rep.put(api.PackageState{PackageID: sum.ID, State: api.StateFailed, Reason: err.Error()})
	}
	return false
}

// discardFull handles a download that ran out of disk space (err): the
// partial download is removed and the package forgotten by the DB, so its
// next attempt is placed again and may go to another volume. It returns the
// error to record, which wraps wharf.ErrNoSpace. A package that has a folder
// in place is left to the usual recovery.
func (f *Fetcher) discardFull(ctx context.Context, id string, err error, log *slog.Logger) error {
	p, ok := f.opt.Store.Get(id)
	if !ok || p.State == api.StateReady {
		return err
	}
	if _, lerr := f.fs.Lstat(p.Path); lerr == nil {
		return err
	}
	if rerr := f.roots.Trash(p.Root, storeroot.DownloadTemp(p.Root, p.ID)); rerr != nil {
		log.Error("remove the partial download of a package that ran out of space", "root", p.Root, "err", rerr)
		return err
	}
	if derr := f.opt.Store.Delete(ctx, p.ID); derr != nil {
		log.Error("forget a package that ran out of space", "err", derr)
		return err
	}
	log.Warn("download ran out of disk space; removed what was written, the package will be placed again", "root", p.Root, "err", err)
	return wharf.Errorf(wharf.ErrNoSpace, "not enough space in %s: %v (the partial download was removed)", p.Root, err)
}

// remove deletes an unassigned package from disk, then from the DB.
func (f *Fetcher) remove(ctx context.Context, p store.Package) error {
	if err := f.roots.Trash(p.Root, p.Path); err != nil {
		return err
	}
	if err := f.roots.Trash(p.Root, storeroot.DownloadTemp(p.Root, p.ID)); err != nil {
		return err
	}
	if err := f.opt.Store.Delete(ctx, p.ID); err != nil {
		return err
	}
	f.rep.forget(p.ID)
	f.log.Info("removed unassigned package", "package", p.ID, "name", p.Name, "version", p.Version, "path", p.Path)
	return nil
}

// checkRoots re-checks the marker of every root that holds packages and
// updates their availability, reporting what changed.
func (f *Fetcher) checkRoots(ctx context.Context) {
	for _, root := range f.opt.Store.Roots() {
		ok, err := f.roots.HasMarker(root)
		if ok {
			if f.opt.Store.SetRootAvailable(root, true, "") {
				f.log.Info("store root is back; its packages are available again", "root", root)
				f.rootBack(ctx, root)
				f.reportRoot(root)
				f.mu.Lock()
				for _, fl := range f.failures {
					fl.next = time.Time{} // some may have failed for want of this root
				}
				f.requeue, f.scanRemovals = true, true
				f.mu.Unlock()
			}
			continue
		}
		reason := fmt.Sprintf("store root %s has no %s marker (volume not mounted?)", root, storeroot.MarkerName)
		if err != nil {
			reason = err.Error()
		}
		if f.opt.Store.SetRootAvailable(root, false, reason) {
			f.log.Warn("store root unavailable; its packages are not served and not downloaded again until its marker is back"+
				" (if the folder was emptied on purpose, create the marker file again to download them anew)",
				"root", root, "marker", storeroot.MarkerName, "reason", reason)
			f.mu.Lock()
			for _, j := range f.running {
				if j.root == root {
					j.cancel()
				}
			}
			f.requeue = true
			f.mu.Unlock()
			f.reportRoot(root)
		}
	}
}

// rootBack checks the ready packages of a root that came back: a package
// whose files are missing or of the wrong size is discarded and downloaded
// again.
func (f *Fetcher) rootBack(ctx context.Context, root string) {
	for _, p := range f.opt.Store.List() {
		if p.Root == root && p.State == api.StateReady {
			f.checkReady(ctx, p.ID)
		}
	}
}

func (f *Fetcher) reportRoot(root string) {
	f.reportAll(func(p store.Package) bool { return p.Root == root })
}

// reportAll reports the state of every package for which keep is true:
// O(packages), at start, when a root comes or goes, and after a relocation.
func (f *Fetcher) reportAll(keep func(store.Package) bool) {
	for _, p := range f.opt.Store.List() {
		if keep(p) {
			f.reportPackage(p)
		}
	}
}

func (f *Fetcher) reportPackage(p store.Package) {
	state, reason := p.Reported()
	f.rep.put(api.PackageState{PackageID: p.ID, State: state, Reason: reason, Path: p.Path})
}
