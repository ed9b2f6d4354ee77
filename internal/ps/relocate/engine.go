package relocate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/wharf-project/wharf/internal/ps/clock"
	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/ps/volume"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Options configure an Engine. FS, Facts, Index, Journal and Server are
// required.
type Options struct {
	// FS is the file system the packages live on (fsys.OS in production).
	FS fsys.FS
	// Roots, optional, is the layout of the Package Server's store roots
	// on FS, shared with the downloader so the two never prepare or
	// retire a root at once; nil makes one of FS and Server.
	Roots *storeroot.Roots
	// Facts answers questions about volumes (volume.New() in production).
	Facts volume.Facts
	// Index and Journal are the PS's state DB.
	Index   Index
	Journal Journal
	// Server is this Package Server's name, written into the store marker
	// of the target and compared with the marker of an existing store.
	Server string

	// Limits are the path-length limits; the zero value means those of
	// the running OS (volume.DefaultLimits).
	Limits volume.Limits
	// KnownFolder reports a known system folder (SPEC §6.1.4); nil means
	// volume.IsKnownFolder.
	KnownFolder func(path string) (bool, string)
	// Clock tells the time (of an attempt, for progress and ETA); nil
	// means the wall clock.
	Clock clock.Clock
	// Log receives the engine's log; nil discards it.
	Log *slog.Logger

	// Parallel bounds how many packages move at once; default 16 (copies
	// wait on the disk far more than on the CPU: on the 20,000-file
	// benchmark 16 beat 4 by 7% and on the 2 GiB one by 40%). Crash
	// tests use 1, so the order of file-system calls is the same on
	// every run.
	Parallel int
	// RenameParallel bounds how many packages are under way at once, most
	// of them moving by rename, which costs little but a folder sync that
	// moves at once share (group commit); default 16 × Parallel. Copies
	// still take one of the Parallel slots.
	RenameParallel int
	// Limiter, when set, limits the rate of copied bytes
	// (relocation.bandwidth). Renames are not limited.
	Limiter *rate.Limiter
	// EstimateRate is the copy rate, in bytes per second, a Plan assumes
	// for its time estimate; default 100 MiB/s (or the Limiter's rate
	// when lower).
	EstimateRate int64
	// PageSize is how many packages, and FilePageSize how many files of
	// one package, are read from the index at once; defaults 256 and 1024.
	PageSize     int
	FilePageSize int

	// OnPackage, when set, is called with the result of every package a
	// Run touches, when it is done. OnProgress, when set, is called with
	// the progress after every package and, while copying, every 16 MiB.
	// Both are called from the goroutines doing the work, one call at a
	// time, and must return quickly; they may call Engine.Progress.
	OnPackage  func(PackageResult)
	OnProgress func(Progress)
}

// Engine relocates a Package Server's store: see the package doc. Create
// one with New; it is safe for concurrent use, but runs one Run or Recover
// at a time (a second one fails at once).
type Engine struct {
	opt     Options
	fs      fsys.FS
	roots   *storeroot.Roots
	facts   volume.Facts
	index   Index
	journal Journal
	limits  volume.Limits
	clock   clock.Clock
	log     *slog.Logger

	knownFolder func(string) (bool, string)

	// noVolumeSync is set once the FS answered that it cannot sync a whole
	// volume; copies then sync file by file.
	noVolumeSync atomic.Bool
	group        *groupSyncer  // nil when the FS cannot sync a volume
	copySlots    chan struct{} // Parallel tokens, one per copy under way

	busy sync.Mutex // held by Run and Recover
	dirs *dirSet    // folders made durable by the Run or Recover under way

	mu       sync.Mutex // guards prog and serializes the callbacks
	prog     Progress
	reported int64                    // BytesDone at the last OnProgress while copying
	snap     atomic.Pointer[Progress] // a copy of prog, for Progress
}

// New returns an engine; it checks the options and touches nothing.
func New(opt Options) (*Engine, error) {
	switch {
	case opt.FS == nil, opt.Facts == nil, opt.Index == nil, opt.Journal == nil:
		return nil, errors.New("relocate: FS, Facts, Index and Journal are required")
	case opt.Server == "":
		return nil, errors.New("relocate: Server is required")
	}
	if opt.Parallel <= 0 {
		opt.Parallel = 16
	}
	if opt.PageSize <= 0 {
		opt.PageSize = 256
	}
	if opt.FilePageSize <= 0 {
		opt.FilePageSize = 1024
	}
	if opt.EstimateRate <= 0 {
		opt.EstimateRate = 100 << 20
	}
	if opt.RenameParallel <= 0 {
		opt.RenameParallel = 16 * opt.Parallel
	}
	opt.RenameParallel = max(opt.RenameParallel, opt.Parallel)
	e := &Engine{
		opt: opt, fs: opt.FS, facts: opt.Facts, index: opt.Index, journal: opt.Journal,
		limits: opt.Limits, clock: opt.Clock, log: opt.Log, knownFolder: opt.KnownFolder,
		copySlots: make(chan struct{}, opt.Parallel),
	}
	if vs, ok := opt.FS.(fsys.VolumeSyncer); ok {
		e.group = newGroupSyncer(vs)
	}
	if e.limits == (volume.Limits{}) {
		e.limits = volume.DefaultLimits()
	}
	if e.clock == nil {
		e.clock = clock.Real{}
	}
	e.roots = opt.Roots
	if e.roots == nil {
		e.roots = storeroot.New(opt.FS, opt.Server, e.clock)
	}
	if e.log == nil {
		e.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e.log = e.log.With("component", "relocate")
	if e.knownFolder == nil {
		e.knownFolder = volume.IsKnownFolder
	}
	return e, nil
}

// Outcome is what became of a package in an attempt (SPEC §6.6); the words
// are those of api.RelocationPackage.State.
type Outcome string

// Outcomes.
const (
	// Moved: the package is whole at the target, nothing of it left at
	// its old place (or only leftovers journaled for removal).
	Moved Outcome = "moved"
	// Linked: the package could not be moved; it is whole at its old
	// place and a link at the target points to it.
	Linked Outcome = "linked"
	// Pending: the attempt ended (canceled) before it got to the package.
	Pending Outcome = "pending"
	// Failed: neither moved nor linked; the package is whole where it was
	// and the index says so.
	Failed Outcome = "failed"
)

// Causes of a package not moving, in PackageResult.Cause.
const (
	CausePermission   = "permission"    // EPERM, EACCES
	CauseBusy         = "busy"          // EBUSY, a file held open
	CauseIO           = "io"            // EIO
	CauseNoSpace      = "no-space"      // ENOSPC
	CauseNotRemovable = "not-removable" // the old folder could not be removed
	CauseDamaged      = "damaged"       // the old copy does not match its manifest
	CauseCanceled     = "canceled"      // the attempt was canceled
	CauseGone         = "gone"          // the package left the index during the move
	CauseOther        = "other"
)

// PackageResult is what became of one package in an attempt.
type PackageResult struct {
	Package wharf.PackageID `json:"package_id"`
	Outcome Outcome         `json:"state"`
	// Method is how it moved: "rename", "copy"; "link" when linked.
	Method string `json:"method,omitempty"`
	// Cause and Reason say why it did not move (or what is left to do).
	Cause  string `json:"cause,omitempty"`
	Reason string `json:"reason,omitempty"`
	// From is the folder it was in; Path where it is served from now
	// (its folder, or for a linked package the link at the target).
	From string `json:"from,omitempty"`
	Path string `json:"path,omitempty"`
	// Bytes is how many bytes were copied.
	Bytes int64 `json:"bytes,omitempty"`
	// Rotated marks a package that was on a root other than Request.From.
	Rotated bool `json:"rotated,omitempty"`
	// Leftovers are paths of its old place not removed yet; they are
	// journaled and removed by a later Recover or Run.
	Leftovers []string `json:"leftovers,omitempty"`
}

// Progress tells how far a running attempt is.
type Progress struct {
	Target        string    `json:"target"`
	Running       bool      `json:"running"`
	Started       time.Time `json:"started"`
	PackagesTotal int       `json:"packages_total"`
	PackagesDone  int       `json:"packages_done"`
	BytesTotal    int64     `json:"bytes_total"`
	BytesDone     int64     `json:"bytes_done"`
	Moved         int       `json:"moved"`
	Linked        int       `json:"linked"`
	Failed        int       `json:"failed"`
}

// ETA estimates the time left at now from the rate so far: by bytes when
// there are bytes to copy, else by packages. It is 0 when nothing is done
// yet or everything is.
func (p Progress) ETA(now time.Time) time.Duration {
	elapsed := now.Sub(p.Started)
	if elapsed <= 0 {
		return 0
	}
	done, total := float64(p.BytesDone), float64(p.BytesTotal)
	if p.BytesTotal == 0 {
		done, total = float64(p.PackagesDone), float64(p.PackagesTotal)
	}
	if done <= 0 || done >= total {
		return 0
	}
	return time.Duration(float64(elapsed) * (total - done) / done)
}

// Result is the outcome of an attempt.
type Result struct {
	Target string `json:"target"`
	// Status is the attempt's status bits (SPEC §6.3): the failed
	// prerequisites; or success or some-not-moved, with consolidated and
	// manual as they apply. A canceled attempt has neither success nor
	// some-not-moved. The caller adds retries-exhausted, which it counts.
	Status      wharf.RelocationStatus `json:"status"`
	StatusFlags []string               `json:"status_flags"`
	// Warning is wharf.RelocationWarning when some packages were not moved.
	Warning  string    `json:"warning,omitempty"`
	Plan     *Plan     `json:"plan,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Counts of the packages the attempt touched.
	Moved       int   `json:"moved"`
	Linked      int   `json:"linked"`
	Failed      int   `json:"failed"`
	Pending     int   `json:"pending"`
	BytesCopied int64 `json:"bytes_copied"`
	// NotMoved lists the packages linked or failed, with their reasons.
	NotMoved []PackageResult `json:"not_moved,omitempty"`
	Canceled bool            `json:"canceled,omitempty"`
}

// Progress returns the progress of the running attempt (or of the last
// one, with Running false). It may be called from the callbacks.
func (e *Engine) Progress() Progress {
	if p := e.snap.Load(); p != nil {
		return *p
	}
	return Progress{}
}

// published stores a copy of prog for Progress; e.mu is held.
func (e *Engine) published() Progress {
	p := e.prog
	e.snap.Store(&p)
	return p
}

// errBusy is returned by Run and Recover while another one runs.
var errBusy = errors.New("relocate: a relocation or recovery is already running")

// Run makes one relocation attempt toward req.Target (see the package
// doc): it first finishes what the journal holds open (as Recover does),
// then checks every prerequisite — if one fails, nothing moves and the
// Result carries the failed bits — then moves every package concerned,
// each all or nothing, linking those that cannot move.
//
// Cancel ctx to stop the attempt (a new target arrived): it stops between
// packages — a copy under way is abandoned and discarded, a package past
// its point of no return is finished — and returns the Result so far with
// Canceled set and ctx's error. The journal is consistent then; a new Run
// toward another target takes every package from wherever it is.
//
// The error is for what stops an attempt: the journal or index failing,
// the target failing to be prepared, cancellation. A package that cannot
// move is not an error: it is in the Result.
func (e *Engine) Run(ctx context.Context, req Request) (*Result, error) {
	if !e.busy.TryLock() {
		return nil, errBusy
	}
	defer e.busy.Unlock()
	res := &Result{Target: req.Target, Started: e.clock.Now()}
	var base wharf.RelocationStatus
	if req.Manual {
		base |= wharf.RelocationManual
	}
	done := func(err error) (*Result, error) {
		res.Finished = e.clock.Now()
		res.StatusFlags = res.Status.Names()
		e.mu.Lock()
		e.prog.Running = false
		e.published()
		e.mu.Unlock()
		log := e.log.With("target", req.Target, "status", res.Status.String(), "moved", res.Moved,
			"linked", res.Linked, "failed", res.Failed, "pending", res.Pending)
		if err != nil {
			log.Warn("relocation attempt stopped", "err", err)
		} else {
			log.Info("relocation attempt done")
		}
		return res, err
	}
	if err := e.recover(ctx); err != nil {
		res.Status = base
		return done(err)
	}
	plan, err := e.Plan(ctx, req)
	if err != nil {
		res.Status = base
		return done(err)
	}
	res.Plan = plan
	if !plan.OK {
		res.Status = base | plan.Status
		e.log.Info("relocation refused", "target", req.Target, "plan", plan.String())
		return done(nil)
	}
	rs := &runState{
		target: filepath.Clean(req.Target),
		from:   req.From,
		retry:  req.Retry,
	}
	e.dirs = &dirSet{made: map[string]bool{}}
	rs.temp = filepath.Join(rs.target, storeroot.RelocateDir)
	e.mu.Lock()
	e.prog = Progress{Target: rs.target, Running: true, Started: res.Started,
		PackagesTotal: plan.ByRename + plan.ByCopy, BytesTotal: plan.CopyBytes}
	e.reported = 0
	e.published()
	e.mu.Unlock()

	consolidated := false
	record := func(r PackageResult) {
		e.mu.Lock()
		defer e.mu.Unlock()
		switch r.Outcome {
		case Moved:
			res.Moved++
			e.prog.Moved++
			consolidated = consolidated || r.Rotated
		case Linked:
			res.Linked++
			e.prog.Linked++
			res.NotMoved = append(res.NotMoved, r)
		case Failed:
			res.Failed++
			e.prog.Failed++
			res.NotMoved = append(res.NotMoved, r)
		case Pending:
			res.Pending++
		}
		res.BytesCopied += r.Bytes
		if r.Outcome != Pending {
			e.prog.PackagesDone++
		}
		p := e.published()
		if e.opt.OnPackage != nil {
			e.opt.OnPackage(r)
		}
		if e.opt.OnProgress != nil {
			e.opt.OnProgress(p)
		}
	}
	whole, err := e.moveRoot(ctx, rs, plan, record)
	switch {
	case err != nil:
		res.Status = base
		return done(err)
	case whole:
		// Every package moved with its root, in one rename.
	default:
		if err := e.prepareTarget(rs); err != nil {
			res.Status = base | wharf.RelocationInvalidTarget
			return done(fmt.Errorf("prepare relocation target %s: %w", rs.target, err))
		}
		err = e.movePackages(ctx, rs, record)
		e.tidy(rs)
	}

	switch {
	case err != nil && ctx.Err() != nil:
		res.Canceled = true
		res.Pending = max(res.Pending, plan.ByRename+plan.ByCopy-res.Moved-res.Linked-res.Failed)
		res.Status = base
	case err != nil:
		res.Status = base
		return done(err)
	case res.Linked+res.Failed > 0:
		res.Status = base | wharf.RelocationSomeNotMoved
		res.Warning = wharf.RelocationWarning
	default:
		res.Status = base | wharf.RelocationSuccess
	}
	if consolidated {
		res.Status |= wharf.RelocationConsolidated
	}
	return done(err)
}

// runState is what the moves of one attempt share.
type runState struct {
	target string // clean
	temp   string // <target>/.wharf-relocate
	from   string
	retry  bool
}

// selected reports whether a Run touches package p.
func (rs *runState) selected(p Package) bool {
	switch {
	case p.Custom:
		return false
	case samePath(p.Folder, filepath.Join(rs.target, string(p.ID))) && p.Link == "":
		return false // already there
	case rs.retry && p.Link == "":
		return false // a retry touches linked packages only
	}
	return true
}

// errStop ends the listing of packages when the attempt is canceled.
var errStop = errors.New("stop")

// movePackages moves every selected package, RenameParallel at a time (of
// which Parallel may copy at once). It
// returns the first fatal error (journal, index), or ctx's error when
// canceled.
func (e *Engine) movePackages(ctx context.Context, rs *runState, record func(PackageResult)) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.opt.RenameParallel)
	err := e.eachPackage(ctx, func(p Package) error {
		if !rs.selected(p) {
			return nil
		}
		if gctx.Err() != nil {
			return errStop
		}
		g.Go(func() error {
			r, err := e.movePackage(gctx, rs, p)
			if err != nil {
				return err
			}
			record(r)
			return nil
		})
		return nil
	})
	werr := g.Wait()
	switch {
	case werr != nil:
		return werr
	case err != nil && !errors.Is(err, errStop):
		return err
	}
	return ctx.Err()
}

// progressBytes adds n copied bytes to the progress.
func (e *Engine) progressBytes(n int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.prog.BytesDone += n
	p := e.published()
	if e.opt.OnProgress != nil && p.BytesDone-e.reported >= 16<<20 {
		e.reported = p.BytesDone
		e.opt.OnProgress(p)
	}
}

// dirSet remembers the folders made durable in an attempt, so concurrent
// moves create and sync each one once.
type dirSet struct {
	mu   sync.Mutex
	made map[string]bool
}

// ensureDir makes folder dir exist durably: created if missing and its
// parent synced (also when another call created it, so that a caller never
// builds on a folder whose entry is not durable yet).
func (e *Engine) ensureDir(dir string) error {
	ds := e.dirs
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if ds.made[dir] {
		return nil
	}
	if err := e.fs.Mkdir(dir, 0o755); err != nil && !errors.Is(err, errExist) {
		return err
	}
	if err := e.syncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	ds.made[dir] = true
	return nil
}
