package location

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/clock"
	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/ps/store"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/ps/volume"
	"github.com/wharf-project/wharf/internal/wharf"
)

// State is what the controller keeps in the state DB; *store.Store
// implements it. Save is durable when it returns.
type State interface {
	LoadRelocationState(ctx context.Context) (store.RelocationState, bool, error)
	SaveRelocationState(ctx context.Context, st store.RelocationState) error
	// Links returns the link of every package behind one, by package ID.
	Links(ctx context.Context) (map[string]string, error)
	// UsesRoot reports whether a package's folder or link is in root.
	UsesRoot(root string) bool
}

// Placer is the one owner of where new downloads go (place.Rotating):
// SetPrimary changes the location new packages go to, for the placements
// that follow; Pause makes new placements wait until Resume with the same
// reason (the reasons are independent: placements go on once none is
// left). All return at once.
type Placer interface {
	SetPrimary(dir string)
	Pause(reason string)
	Resume(reason string)
}

// Reasons the controller pauses new placements for.
const (
	// PauseDeciding: a configuration named another location; placements
	// wait until the controller decided whether the store moves there (so
	// a package the same configuration assigns goes to the right place).
	PauseDeciding = "deciding the storage location"
	// PauseExclusive: an attempt in exclusive mode runs (SPEC §6.4).
	PauseExclusive = "exclusive relocation"
)

// Downloads is the downloader as an attempt sees it (*fetch.Fetcher):
// while an attempt runs no package is removed from the store (an
// unassigned package is removed after it, not from under a move), and once
// it ended the NS learns every package's path anew.
type Downloads interface {
	// HoldRemovals keeps every package in the store until ReleaseRemovals.
	HoldRemovals()
	// ReleaseRemovals lets the removals held back go on and reports every
	// package's (new) path to the NS.
	ReleaseRemovals()
}

// Serving switches package requests to 503 with Retry-After (exclusive
// mode) and back.
type Serving interface {
	Unavailable(retryAfter time.Duration)
	Available()
}

// Links is the link audit as the controller uses it (*linkaudit.Auditor):
// the event that ends an attempt carries its latest result, and an attempt
// that ended asks for a new audit (it may have moved, linked or relinked
// packages). Both return at once.
type Links interface {
	Latest() *api.LinkAudit
	Poke()
}

// NS is what the controller sends to the Notification Server;
// *apiclient.Client implements it. Calls are made from the controller's own
// goroutines and retried on failure.
type NS interface {
	PostLocationStatus(ctx context.Context, server string, ev api.LocationStatus) error
	CompleteTask(ctx context.Context, server, id string, res api.TaskResult) error
}

// Options configure a Controller. Every field without "optional" is
// required.
type Options struct {
	// Server is this Package Server's name.
	Server string
	// Default is the default location, <install dir>/Package Delivery.
	Default string

	FS fsys.FS // the file system the packages live on (fsys.OS)
	// Roots, optional, is the layout of the store roots on FS, shared
	// with the downloader; nil makes one of FS and Server.
	Roots   *storeroot.Roots
	Facts   volume.Facts // volume facts (volume.New())
	Index   relocate.Index
	Journal relocate.Journal
	State   State
	NS      NS
	Placer  Placer

	// Downloads, optional, holds back removals while an attempt runs.
	// Serving, optional, answers 503 during an attempt in exclusive mode.
	// Links, optional, is the link audit.
	Downloads Downloads
	Serving   Serving
	Links     Links

	// Reserve is storage.reserve: the free space the target volume keeps.
	Reserve relocate.Reserve
	// MaxAttempts is relocation.max_attempts: automatic retries allowed
	// (0 allows none). Interval is relocation.interval, between them;
	// default 15m.
	MaxAttempts int
	Interval    time.Duration
	// Bandwidth, optional, is relocation.bandwidth: the copy rate limit in
	// bytes per second.
	Bandwidth int64

	// Clock, optional, tells the time and paces retries; default the wall
	// clock. Log, optional, receives the controller's and the engine's log.
	Clock clock.Clock
	Log   *slog.Logger
	// Registry, optional, gets the relocation metrics.
	Registry prometheus.Registerer

	// ProgressInterval is the shortest time between two progress events;
	// default 1s. RetryAfter is what exclusive mode answers in Retry-After;
	// default 60s.
	ProgressInterval time.Duration
	RetryAfter       time.Duration
	// Engine, optional, changes the engine's options (tests: Parallel,
	// KnownFolder, page sizes).
	Engine func(*relocate.Options)
}

// Config is what every configuration the PS applies tells the controller.
type Config struct {
	// Location is AgentSettings.StorageLocation: "default" or a path.
	Location string
	// Mode is AgentSettings.RelocationMode: "online" (default) or
	// "exclusive".
	Mode string
	// Tasks are the pending server tasks.
	Tasks []api.Task
}

// Kinds of attempts, as logged, in metrics and in Status.
const (
	KindPolicy    = "policy"    // toward a new location
	KindResume    = "resume"    // an interrupted attempt again
	KindAutomatic = "automatic" // an automatic retry (counted)
	KindManual    = "manual"    // a manual retry (not counted)
)

// Controller runs relocation attempts; see the package doc. Create it with
// New, call Recover once before serving, then Serve; feed it with Apply.
type Controller struct {
	opt   Options
	roots *storeroot.Roots
	eng   *relocate.Engine
	log   *slog.Logger
	met   *metrics
	wake  chan struct{}
	send  *sender

	mu         sync.Mutex
	st         store.RelocationState // as saved
	recovered  bool
	haveConfig bool
	location   string // Config.Location, resolved
	mode       string
	manual     int
	run        *attempt
	deciding   bool            // placements paused until the location is decided
	changes    int             // location changes applied so far
	resumeAt   time.Time       // an attempt that failed runs again from then on
	failures   int             // attempts in a row that ended with an error
	lastFailed bool            // the last attempt left packages neither moved nor linked
	tasks      map[string]bool // server tasks taken (answered or being answered)
	todo       []api.Task      // server tasks to answer
	tidyAt     time.Time       // when dangling links may be looked for again
	catchAt    time.Time       // when packages left in the old location may be looked for again
	straggle   string          // the packages a catch-up attempt was last started for
	catchUp    bool            // a catch-up attempt is due
}

// New returns a controller; it touches nothing.
func New(opt Options) (*Controller, error) {
	switch {
	case opt.Server == "", opt.Default == "":
		return nil, errors.New("relocation: Server and Default are required")
	case opt.FS == nil, opt.Facts == nil, opt.Index == nil, opt.Journal == nil, opt.State == nil, opt.NS == nil, opt.Placer == nil:
		return nil, errors.New("relocation: FS, Facts, Index, Journal, State, NS and Placer are required")
	}
	if opt.Interval <= 0 {
		opt.Interval = 15 * time.Minute
	}
	if opt.MaxAttempts < 0 {
		opt.MaxAttempts = 0
	}
	if opt.Clock == nil {
		opt.Clock = clock.Real{}
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opt.ProgressInterval <= 0 {
		opt.ProgressInterval = time.Second
	}
	if opt.RetryAfter <= 0 {
		opt.RetryAfter = 60 * time.Second
	}
	c := &Controller{
		opt:   opt,
		log:   opt.Log.With("component", "relocation"),
		met:   newMetrics(opt.Registry),
		wake:  make(chan struct{}, 1),
		tasks: map[string]bool{},
		mode:  api.RelocationOnline,
	}
	c.send = newSender(c)
	c.roots = opt.Roots
	if c.roots == nil {
		c.roots = storeroot.New(opt.FS, opt.Server, opt.Clock)
	}
	eo := relocate.Options{
		FS: opt.FS, Roots: c.roots, Facts: opt.Facts, Index: opt.Index, Journal: opt.Journal, Server: opt.Server,
		Clock: opt.Clock, Log: opt.Log, OnPackage: c.onPackage, OnProgress: c.onProgress,
	}
	if opt.Bandwidth > 0 {
		burst := int(min(max(opt.Bandwidth/4, 64<<10), 1<<20))
		eo.Limiter = rate.NewLimiter(rate.Limit(opt.Bandwidth), burst)
	}
	if opt.Engine != nil {
		opt.Engine(&eo)
	}
	eng, err := relocate.New(eo)
	if err != nil {
		return nil, err
	}
	c.eng = eng
	return c, nil
}

// Recover loads the controller's state (the first start of a PS begins at
// the default location) and runs the engine's Recover: every journal entry
// is rolled forward or back, so the state DB names a whole folder for every
// package. Call it once, before serving.
func (c *Controller) Recover(ctx context.Context) error {
	st, ok, err := c.opt.State.LoadRelocationState(ctx)
	if err != nil {
		return err
	}
	if !ok {
		def := filepath.Clean(c.opt.Default)
		st = store.RelocationState{StoragePath: def, Target: def, LastTried: def, EventSent: true}
		if err := c.opt.State.SaveRelocationState(ctx, st); err != nil {
			return err
		}
	}
	if err := c.eng.Recover(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	c.st, c.recovered = st, true
	if st.Mode == api.RelocationExclusive {
		c.mode = st.Mode // until a configuration says otherwise
	}
	c.mu.Unlock()
	c.met.attemptsDone.Set(float64(st.AttemptsDone))
	c.met.lastStatus.Set(float64(st.LastStatus))
	if st.Running {
		c.log.Info("a relocation attempt was under way when the package server stopped; it will go on",
			"target", st.LastTried, "retry", st.RunRetry, "manual", st.RunManual)
	}
	if st.LastEvent != nil && !st.EventSent {
		c.send.final(*st.LastEvent)
	}
	return nil
}

// Primary returns where new downloads go: the location the store is in, or
// is moving to. Valid after Recover.
func (c *Controller) Primary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.Target
}

// StoragePath returns the location in effect (valid after Recover).
func (c *Controller) StoragePath() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.StoragePath
}

// Busy reports whether an attempt runs.
func (c *Controller) Busy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.run != nil
}

// Apply takes the relocation settings and tasks of a configuration the PS
// applies, and returns at once: the poll loop never waits on the
// controller. When the location changed, new placements wait
// (Placer.Pause(PauseDeciding)) until the controller decided about it — the
// new attempt's prerequisites passed (new downloads go to the target) or
// failed, or nothing is to be moved — so downloads the same configuration
// starts are placed where they belong. Tasks are taken at once and
// answered from other goroutines.
func (c *Controller) Apply(cfg Config) {
	c.mu.Lock()
	loc := c.resolve(cfg.Location)
	changed := !c.haveConfig || loc != c.location
	if changed && c.haveConfig {
		c.log.Info("storage location changed", "location", loc, "was", c.location)
	}
	c.haveConfig, c.location = true, loc
	if cfg.Mode == api.RelocationExclusive {
		c.mode = api.RelocationExclusive
	} else {
		c.mode = api.RelocationOnline
	}
	if changed {
		c.changes++
		if !c.deciding {
			c.deciding = true
			c.opt.Placer.Pause(PauseDeciding)
		}
	}
	for _, t := range cfg.Tasks {
		if c.tasks[t.ID] {
			continue
		}
		c.tasks[t.ID] = true
		if t.Type == api.TaskRetryRelocation {
			c.manual++
			c.log.Info("manual relocation retry asked for by the NS", "task", t.ID)
		}
		c.todo = append(c.todo, t) // answered from Serve's goroutines
	}
	c.mu.Unlock()
	c.wakeUp()
}

// decidedLocked lets placements go on once the location changes applied up
// to change are decided; c.mu is held.
func (c *Controller) decidedLocked(change int) {
	if c.deciding && change >= c.changes {
		c.deciding = false
		c.opt.Placer.Resume(PauseDeciding)
	}
}

// Retry asks for a manual retry (`wharf ps retry-relocation`): it runs as
// soon as no attempt is under way.
func (c *Controller) Retry(ctx context.Context) error {
	c.mu.Lock()
	if !c.recovered {
		c.mu.Unlock()
		return errors.New("relocation: the package server is starting")
	}
	c.manual++
	c.mu.Unlock()
	c.log.Info("manual relocation retry asked for locally")
	c.wakeUp()
	return nil
}

// Plan evaluates path as a relocation target, moving nothing, with the
// request an attempt there would make (`wharf ps relocate --plan`, the NS's
// check-location task).
func (c *Controller) Plan(ctx context.Context, path string) (*relocate.Plan, error) {
	c.mu.Lock()
	req := c.request(c.resolve(path), false, false)
	c.mu.Unlock()
	return c.eng.Plan(ctx, req)
}

// resolve turns a configured location into the path it means; c.mu is held
// or not needed.
func (c *Controller) resolve(loc string) string {
	if loc == "" || loc == api.LocationDefault {
		return filepath.Clean(c.opt.Default)
	}
	if filepath.IsAbs(loc) {
		return filepath.Clean(loc)
	}
	return loc // not absolute: the plan refuses it as invalid-target
}

// request builds the engine request of an attempt toward target; c.mu is
// held.
func (c *Controller) request(target string, retry, manual bool) relocate.Request {
	return relocate.Request{Target: target, From: c.st.StoragePath, Default: filepath.Clean(c.opt.Default),
		Reserve: c.opt.Reserve, Retry: retry, Manual: manual}
}

func (c *Controller) wakeUp() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Serve runs attempts until ctx ends; then it cancels the attempt under way
// (the journal is consistent when the engine returns; the next start goes
// on) and returns nil once it stopped.
func (c *Controller) Serve(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.send.serve(ctx)
	}()
	defer wg.Wait()
	for {
		c.mu.Lock()
		wait := c.decideLocked(ctx)
		c.mu.Unlock()
		var timer <-chan time.Time
		if wait > 0 {
			timer = c.opt.Clock.After(wait)
		}
		c.mu.Lock()
		todo := c.todo
		c.todo = nil
		c.mu.Unlock()
		for _, t := range todo {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if t.Type == api.TaskRetryRelocation {
					c.complete(ctx, t, api.TaskResult{})
					return
				}
				c.answerTask(ctx, t)
			}()
		}
		select {
		case <-ctx.Done():
			c.mu.Lock()
			run := c.run
			if run != nil {
				run.stopping, run.shutdown = "the package server is stopping", true
				run.cancel()
			}
			c.mu.Unlock()
			if run != nil {
				<-run.done
			}
			return nil
		case <-c.wake:
		case <-timer:
		}
	}
}

// desiredLocked is where the store should be: the policy's location, or
// before the first configuration, where it was going.
func (c *Controller) desiredLocked() string {
	if c.haveConfig {
		return c.location
	}
	if c.st.Running {
		return c.st.LastTried
	}
	return c.st.Target
}

// decideLocked starts an attempt if one is due (decide) and returns how
// long to wait before deciding again (0: until woken).
func (c *Controller) decideLocked(ctx context.Context) time.Duration {
	if !c.recovered || ctx.Err() != nil {
		return 0
	}
	if r := c.run; r != nil {
		if d := c.desiredLocked(); r.stopping == "" && !samePath(d, r.req.Target) {
			r.stopping = "the storage location changed to " + d
			c.log.Info("storage location changed during a relocation attempt; stopping it between packages",
				"target", r.req.Target, "new_target", d)
			r.cancel()
		}
		if r.stopping == "" {
			c.decidedLocked(c.changes) // the running attempt goes where the policy says
		}
		return 0 // else decided once the next attempt's plan is
	}
	now := c.opt.Clock.Now()
	act := decide(situation{st: c.st, desired: c.desiredLocked(), manual: c.manual > 0, lastFailed: c.lastFailed,
		resumeAt: c.resumeAt, catchUp: c.catchUp, now: now})
	if act.start {
		switch act.kind {
		case KindManual:
			c.manual = 0
		case KindCatchUp:
			c.catchUp = false
		}
		c.start(ctx, act)
		return 0
	}
	c.decidedLocked(c.changes)
	st := c.st
	if st.LastStatus&wharf.RelocationSomeNotMoved != 0 && !now.Before(c.tidyAt) {
		// Linked packages unassigned since leave links that lead
		// nowhere: remove them now and then.
		c.tidyAt = now.Add(time.Minute)
		go c.tidyLinks(ctx, st.Target)
	}
	if st.From != "" && !samePath(st.From, st.StoragePath) && samePath(st.Target, st.StoragePath) && !now.Before(c.catchAt) {
		c.catchAt = now.Add(30 * time.Second)
		go c.findStragglers(ctx, st.From, st.Target)
	}
	return act.wait
}

// samePath compares two paths after cleaning (without regard to case on
// Windows); an empty path equals only an empty one.
func samePath(a, b string) bool {
	if a == "" || b == "" {
		return a == b
	}
	a, b = filepath.Clean(a), filepath.Clean(b)
	if runtime.GOOS == "windows" {
		return strings.EqualFold(a, b)
	}
	return a == b
}
