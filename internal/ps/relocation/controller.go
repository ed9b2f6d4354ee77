package relocation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

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
}

// Placer is the placer of new downloads (place.Rotating): SetPrimary
// changes the location new packages go to, for the placements that follow.
type Placer interface {
	SetPrimary(dir string)
}

// Downloads pauses and resumes new downloads (exclusive mode). Pause may be
// called while paused, Resume while not; both return at once.
type Downloads interface {
	PauseDownloads()
	ResumeDownloads()
}

// Serving switches package requests to 503 with Retry-After (exclusive
// mode) and back.
type Serving interface {
	Unavailable(retryAfter time.Duration)
	Available()
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

	// Downloads and Serving, optional, are paused during an attempt in
	// exclusive mode.
	Downloads Downloads
	Serving   Serving

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
	// OnIdle, optional, is called (from the controller's goroutine, without
	// its lock, with Serve's context) when an attempt ended: work held back
	// during it (removing unassigned packages) may go on, and package paths
	// have changed.
	OnIdle func(ctx context.Context)

	// ProgressInterval is the shortest time between two progress events;
	// default 1s. RetryAfter is what exclusive mode answers in Retry-After;
	// default 60s. ApplyWait bounds how long Apply waits for the decision
	// about a new location; default 10s.
	ProgressInterval time.Duration
	RetryAfter       time.Duration
	ApplyWait        time.Duration
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
	acks       []chan struct{} // Apply calls waiting for a decision
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

// attempt is one relocation attempt under way.
type attempt struct {
	kind    string
	req     relocate.Request
	mode    string
	started time.Time
	cancel  context.CancelFunc
	acks    []chan struct{} // released once the plan is decided
	done    chan struct{}

	// Under Controller.mu:
	stopping   string // why it was canceled ("" while not)
	shutdown   bool   // canceled because the PS stops
	began      bool   // the plan passed; packages may move
	pkgs       map[wharf.PackageID]*api.RelocationPackage
	order      []wharf.PackageID
	plan       *relocate.Plan
	progress   *api.LocationStatus // the last progress event built
	progressN  int
	consolided bool
	usage      *usage // the packages' bytes, counted for progress events now and then
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
	if opt.ApplyWait <= 0 {
		opt.ApplyWait = 10 * time.Second
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

// Busy reports whether an attempt runs. The daemon holds back removals of
// unassigned packages meanwhile; OnIdle tells when it ended.
func (c *Controller) Busy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.run != nil
}

// Apply takes the relocation settings and tasks of a configuration the PS
// applies. When the location changed, it returns once the new attempt's
// prerequisites were decided (so downloads the same configuration starts
// are placed at the new location when it was accepted), or after
// Options.ApplyWait, or when ctx ends. Tasks are taken at once and answered
// from other goroutines.
func (c *Controller) Apply(ctx context.Context, cfg Config) {
	ack := make(chan struct{})
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
	c.acks = append(c.acks, ack)
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
	if !changed {
		return
	}
	select {
	case <-ack:
	case <-ctx.Done():
	case <-c.opt.Clock.After(c.opt.ApplyWait):
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

// decideLocked starts an attempt if one is due (the rules of the package
// doc) and returns how long to wait before deciding again (0: until woken).
func (c *Controller) decideLocked(ctx context.Context) time.Duration {
	if !c.recovered || ctx.Err() != nil {
		return 0
	}
	acks := c.acks
	c.acks = nil
	release := func() {
		for _, a := range acks {
			close(a)
		}
	}
	if r := c.run; r != nil {
		if d := c.desiredLocked(); r.stopping == "" && !samePath(d, r.req.Target) {
			r.stopping = "the storage location changed to " + d
			c.log.Info("storage location changed during a relocation attempt; stopping it between packages",
				"target", r.req.Target, "new_target", d)
			r.cancel()
		}
		if r.stopping != "" {
			c.acks = acks // decided once the next attempt starts
			return 0
		}
		release()
		return 0
	}
	st := c.st
	d := c.desiredLocked()
	now := c.opt.Clock.Now()
	var wait time.Duration
	switch {
	case st.Running && samePath(d, st.LastTried):
		c.start(ctx, KindResume, d, st.RunRetry, st.RunManual, acks, "")
		return 0
	case c.manual > 0:
		c.manual = 0
		retry := samePath(d, st.Target) && samePath(st.Target, st.StoragePath) && !c.lastFailed
		c.start(ctx, KindManual, d, retry, true, acks, "")
		return 0
	case !samePath(d, st.Target) || st.Running:
		if !st.Running && samePath(d, st.LastTried) && st.LastStatus&wharf.RelocationPrerequisites != 0 {
			break // refused: waits for a manual retry or another location
		}
		c.start(ctx, KindPolicy, d, false, false, acks, "")
		return 0
	case !samePath(st.Target, st.StoragePath):
		if now.Before(c.resumeAt) {
			wait = c.resumeAt.Sub(now)
			break
		}
		c.start(ctx, KindResume, st.Target, false, false, acks, "")
		return 0
	case c.catchUp:
		c.catchUp = false
		c.start(ctx, KindResume, st.Target, false, false, acks, st.From)
		return 0
	case !st.NextRetry.IsZero():
		if now.Before(st.NextRetry) {
			wait = st.NextRetry.Sub(now)
			break
		}
		c.start(ctx, KindAutomatic, st.StoragePath, true, false, acks, "")
		return 0
	}
	release()
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
	return wait
}

// findStragglers looks for packages that became ready in the old location
// after the attempt that left it ended (downloads that were under way
// then); when it finds some it has not seen yet, an attempt moves them.
func (c *Controller) findStragglers(ctx context.Context, from, target string) {
	var ids []string
	err := c.eachPackage(ctx, func(p relocate.Package) {
		if !p.Custom && p.Link == "" && samePath(filepath.Dir(filepath.Clean(p.Folder)), from) {
			ids = append(ids, string(p.ID))
		}
	})
	if err != nil || len(ids) == 0 {
		return
	}
	key := strings.Join(ids, ",")
	c.mu.Lock()
	found := key != c.straggle && c.run == nil && samePath(c.st.Target, target)
	if found {
		c.straggle, c.catchUp = key, true
	}
	c.mu.Unlock()
	if found {
		c.log.Info("packages became ready in the old location after the relocation; moving them", "from", from,
			"to", target, "packages", len(ids))
		c.wakeUp()
	}
}

// start begins an attempt; c.mu is held.
// from, when set, is the request's From instead of the storage path (a
// catch-up: packages there are not rotated ones).
func (c *Controller) start(ctx context.Context, kind, target string, retry, manual bool, acks []chan struct{}, from string) {
	now := c.opt.Clock.Now()
	st := &c.st
	switch kind {
	case KindAutomatic:
		st.AttemptsDone++
		st.NextRetry = time.Time{}
	case KindPolicy:
		if !samePath(target, st.Target) {
			st.AttemptsDone, st.NextRetry = 0, time.Time{}
		}
	}
	st.Running, st.RunRetry, st.RunManual, st.Mode = true, retry, manual, c.mode
	st.LastTried, st.LastAttempt = target, now
	if err := c.opt.State.SaveRelocationState(context.WithoutCancel(ctx), *st); err != nil {
		c.log.Error("save relocation state", "err", err)
	}
	c.met.attemptsDone.Set(float64(st.AttemptsDone))
	actx, cancel := context.WithCancel(ctx)
	a := &attempt{kind: kind, req: c.request(target, retry, manual), mode: c.mode, started: now, cancel: cancel,
		acks: acks, done: make(chan struct{}), pkgs: map[wharf.PackageID]*api.RelocationPackage{}}
	if from != "" {
		a.req.From = from
	}
	c.run = a
	c.log.Info("relocation attempt starting", "kind", kind, "target", target, "from", a.req.From, "retry", retry,
		"manual", manual, "mode", a.mode, "attempts_done", st.AttemptsDone, "max_attempts", c.opt.MaxAttempts)
	c.met.running.Set(1)
	go c.runAttempt(ctx, actx, a)
}

// runAttempt runs attempt a to its end on its own goroutine; parent is
// Serve's context, ctx the attempt's.
func (c *Controller) runAttempt(parent, ctx context.Context, a *attempt) {
	defer func() {
		c.mu.Lock()
		c.run = nil
		c.mu.Unlock()
		c.met.running.Set(0)
		close(a.done)
		if c.opt.OnIdle != nil && parent.Err() == nil {
			c.opt.OnIdle(parent)
		}
		c.wakeUp()
	}()
	decided := false
	decide := func() {
		if !decided {
			decided = true
			for _, ack := range a.acks {
				close(ack)
			}
		}
	}
	defer decide()

	plan, err := c.eng.Plan(ctx, a.req)
	var res *relocate.Result
	if err == nil {
		if plan.OK {
			c.begin(ctx, a, plan)
		}
		decide()
		res, err = c.passes(ctx, a)
		if a.began {
			c.end(a)
		}
	}
	c.finish(ctx, a, res, err)
}

// begin makes the attempt's target the place of new downloads once the
// plan passed, pauses what exclusive mode pauses, lists the packages the
// attempt touches and sends the first progress event.
func (c *Controller) begin(ctx context.Context, a *attempt, plan *relocate.Plan) {
	target := filepath.Clean(a.req.Target)
	c.mu.Lock()
	a.began, a.plan = true, plan
	st := &c.st
	if !samePath(st.Target, target) {
		st.From, st.Target = st.StoragePath, target
	}
	if err := c.opt.State.SaveRelocationState(context.WithoutCancel(ctx), *st); err != nil {
		c.log.Error("save relocation state", "err", err)
	}
	c.mu.Unlock()
	// The target is marked before downloads may go there: the fetcher
	// then finds a store of this server and writes nothing of its own
	// next to the engine's checks.
	if err := c.roots.Prepare(target); err != nil {
		c.log.Warn("prepare the relocation target", "path", target, "err", err)
	}
	c.opt.Placer.SetPrimary(target)
	if a.mode == api.RelocationExclusive {
		c.log.Info("exclusive relocation: downloads paused and package requests answered 503 until the attempt ends")
		if c.opt.Downloads != nil {
			c.opt.Downloads.PauseDownloads()
		}
		if c.opt.Serving != nil {
			c.opt.Serving.Unavailable(c.opt.RetryAfter)
		}
	}
	pkgs, err := c.selected(ctx, a.req)
	if err != nil {
		c.log.Warn("list the packages of the attempt", "err", err)
	}
	c.mu.Lock()
	for _, p := range pkgs {
		if _, ok := a.pkgs[p.ID]; !ok {
			a.pkgs[p.ID] = &api.RelocationPackage{PackageID: string(p.ID), State: api.RelocationPending, Path: p.Folder}
			a.order = append(a.order, p.ID)
		}
	}
	c.mu.Unlock()
	c.progressEvent(ctx, a, true)
	go c.progressLoop(ctx, a)
}

// end restores what begin paused.
func (c *Controller) end(a *attempt) {
	if a.mode == api.RelocationExclusive {
		if c.opt.Serving != nil {
			c.opt.Serving.Available()
		}
		if c.opt.Downloads != nil {
			c.opt.Downloads.ResumeDownloads()
		}
		c.log.Info("exclusive relocation over: downloads and serving restored")
	}
}

// maxPasses bounds the passes of one attempt: a pass after the first moves
// packages that became ready outside the target while it ran (downloads
// that were under way when it began).
const maxPasses = 3

// passes runs the engine, and again while packages that should have moved
// are still outside the target.
func (c *Controller) passes(ctx context.Context, a *attempt) (*relocate.Result, error) {
	var total *relocate.Result
	for pass := 1; ; pass++ {
		res, err := c.eng.Run(ctx, a.req)
		if pass > 1 && err == nil && res != nil && res.Status&wharf.RelocationPrerequisites != 0 {
			// A later pass refused (space ran out meanwhile): what it
			// was for stays where it is.
			why := "a further pass was refused: " + strings.Join(prerequisiteFailures(res.Plan), "; ")
			c.mu.Lock()
			for _, p := range a.pkgs {
				if p.State == api.RelocationPending {
					p.State, p.Reason = api.RelocationFailed, why
				}
			}
			c.mu.Unlock()
			return total, nil
		}
		if res != nil && res.Plan != nil && res.Plan.OK && !a.began {
			// The first plan refused, this one passed (space was
			// freed meanwhile): the target takes new downloads now.
			c.begin(ctx, a, res.Plan)
		}
		total = merge(total, res)
		if err != nil || res == nil || res.Canceled || res.Status&wharf.RelocationPrerequisites != 0 || a.req.Retry || pass >= maxPasses {
			return total, err
		}
		left, lerr := c.stragglers(ctx, a.req)
		if lerr != nil || len(left) == 0 {
			return total, nil
		}
		c.log.Info("packages became ready outside the target during the attempt; another pass", "packages", len(left), "pass", pass+1)
		c.mu.Lock()
		for _, p := range left {
			if _, ok := a.pkgs[p.ID]; !ok {
				a.pkgs[p.ID] = &api.RelocationPackage{PackageID: string(p.ID), State: api.RelocationPending, Path: p.Folder}
				a.order = append(a.order, p.ID)
			}
		}
		c.mu.Unlock()
	}
}

// merge adds the result of a further pass to the attempt's.
func merge(total, res *relocate.Result) *relocate.Result {
	switch {
	case res == nil:
		return total
	case total == nil:
		return res
	}
	out := *res
	out.Started = total.Started
	out.Moved += total.Moved
	out.BytesCopied += total.BytesCopied
	out.Status |= total.Status & wharf.RelocationConsolidated
	if total.Plan != nil {
		out.Plan = total.Plan
	}
	return &out
}

// selected lists the packages an attempt with req touches, as the engine
// selects them.
func (c *Controller) selected(ctx context.Context, req relocate.Request) ([]relocate.Package, error) {
	target := filepath.Clean(req.Target)
	var out []relocate.Package
	err := c.eachPackage(ctx, func(p relocate.Package) {
		dest := filepath.Join(target, string(p.ID))
		switch {
		case p.Custom:
		case samePath(p.Folder, dest) && p.Link == "":
		case req.Retry && p.Link == "":
		default:
			out = append(out, p)
		}
	})
	return out, err
}

// stragglers lists the packages still to move after a full pass: not
// custom, neither at the target nor behind a link there.
func (c *Controller) stragglers(ctx context.Context, req relocate.Request) ([]relocate.Package, error) {
	target := filepath.Clean(req.Target)
	var out []relocate.Package
	err := c.eachPackage(ctx, func(p relocate.Package) {
		dest := filepath.Join(target, string(p.ID))
		if !p.Custom && !samePath(p.Folder, dest) && !samePath(p.Link, dest) {
			out = append(out, p)
		}
	})
	return out, err
}

func (c *Controller) eachPackage(ctx context.Context, fn func(relocate.Package)) error {
	var after wharf.PackageID
	for {
		page, err := c.opt.Index.Packages(ctx, after, 512)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		for _, p := range page {
			fn(p)
		}
		after = page[len(page)-1].ID
	}
}

// onPackage records what became of a package (engine callback).
func (c *Controller) onPackage(r relocate.PackageResult) {
	switch r.Outcome {
	case relocate.Moved, relocate.Linked, relocate.Failed:
		c.met.packages.WithLabelValues(string(r.Outcome)).Inc()
	}
	if r.Bytes > 0 {
		c.met.bytesCopied.Add(float64(r.Bytes))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.run
	if a == nil {
		return
	}
	p, ok := a.pkgs[r.Package]
	if !ok {
		p = &api.RelocationPackage{PackageID: string(r.Package)}
		a.pkgs[r.Package] = p
		a.order = append(a.order, r.Package)
	}
	p.State, p.Path, p.Reason = string(r.Outcome), r.Path, ""
	if r.Outcome != relocate.Moved {
		p.Reason = r.Reason
		if r.Cause != "" && !strings.HasPrefix(r.Reason, r.Cause) {
			p.Reason = r.Cause + ": " + r.Reason
		}
	}
	if r.Rotated && r.Outcome == relocate.Moved {
		a.consolided = true
	}
}

// onProgress updates the progress metrics (engine callback).
func (c *Controller) onProgress(p relocate.Progress) { c.met.progress(p) }

// progressLoop sends a progress event every ProgressInterval while the
// attempt runs.
func (c *Controller) progressLoop(ctx context.Context, a *attempt) {
	for {
		select {
		case <-a.done:
			return
		case <-ctx.Done():
			return
		case <-c.opt.Clock.After(c.opt.ProgressInterval):
		}
		c.progressEvent(ctx, a, false)
	}
}

// progressEvent builds the event of a running attempt and sends it.
func (c *Controller) progressEvent(ctx context.Context, a *attempt, first bool) {
	select {
	case <-a.done:
		return
	default:
	}
	p := c.eng.Progress()
	now := c.opt.Clock.Now()
	c.mu.Lock()
	if c.run != a || a.stopping != "" {
		c.mu.Unlock()
		return
	}
	st := c.st
	a.progressN++
	withPackages := len(a.order) <= 2000 || a.progressN%10 == 1
	pkgs := a.packagesLocked(withPackages)
	plan := a.plan
	c.mu.Unlock()
	status := wharf.RelocationInProgress
	if a.req.Manual {
		status |= wharf.RelocationManual
	}
	var u *usage
	if a.usage != nil && a.progressN%10 != 0 {
		u = a.usage
	}
	ev := c.event(ctx, a.req.Target, a.started, status, st.AttemptsDone, "", plan, pkgs, u)
	ev.Message = fmt.Sprintf("relocating to %s", a.req.Target)
	prog := &api.RelocationProgress{BytesDone: p.BytesDone, BytesTotal: p.BytesTotal, PackagesDone: p.PackagesDone,
		PackagesTotal: p.PackagesTotal, StartedAt: a.started, ETASeconds: int64(p.ETA(now).Seconds())}
	if first || !p.Running {
		prog.StartedAt, prog.BytesTotal, prog.PackagesTotal = a.started, plan.CopyBytes, plan.ByCopy+plan.ByRename
	}
	ev.Progress = prog
	c.mu.Lock()
	if c.run == a && a.stopping == "" {
		a.progress = &ev
		a.usage = &usage{used: uint64(ev.PSUsedMB) << 20, required: uint64(ev.VolumeRequiredMB) << 20}
		c.mu.Unlock()
		c.send.progress(ev)
		return
	}
	c.mu.Unlock()
}

// locations returns where every package of the index is; nil when the
// index cannot be read.
func (c *Controller) locations(ctx context.Context) map[wharf.PackageID]relocate.Location {
	out := map[wharf.PackageID]relocate.Location{}
	if err := c.eachPackage(ctx, func(p relocate.Package) { out[p.ID] = p.Location }); err != nil {
		c.log.Warn("list the packages after an attempt", "err", err)
		return nil
	}
	return out
}

// settlePending decides the packages an attempt that ran to its end left
// pending (the engine never got to them): gone from the index meanwhile
// (dropped from the list), at the target or behind a link there already,
// or still elsewhere (failed). Controller.mu is held.
func (a *attempt) settlePending(where map[wharf.PackageID]relocate.Location, target string) {
	if where == nil {
		return
	}
	order := a.order[:0]
	for _, id := range a.order {
		p := a.pkgs[id]
		if p.State != api.RelocationPending {
			order = append(order, id)
			continue
		}
		loc, ok := where[id]
		dest := filepath.Join(target, string(id))
		switch {
		case !ok:
			delete(a.pkgs, id)
			continue
		case samePath(loc.Folder, dest) && loc.Link == "":
			p.State, p.Path = api.RelocationMoved, dest
		case samePath(loc.Link, dest):
			p.State, p.Path, p.Reason = api.RelocationLinked, dest, "behind a link to "+loc.Folder
		default:
			p.State, p.Path, p.Reason = api.RelocationFailed, loc.Folder, "not moved: still at "+loc.Folder
		}
		order = append(order, id)
	}
	a.order = order
}

// packagesLocked returns the packages' states in the order they were
// listed (all, or only those not pending when all is false).
func (a *attempt) packagesLocked(all bool) []api.RelocationPackage {
	out := make([]api.RelocationPackage, 0, len(a.order))
	for _, id := range a.order {
		p := a.pkgs[id]
		if all || p.State != api.RelocationPending {
			out = append(out, *p)
		}
	}
	return out
}

// finish records the end of an attempt: counters, status, the storage path
// in effect, the next retry; then it sends the event that ends the attempt.
func (c *Controller) finish(ctx context.Context, a *attempt, res *relocate.Result, err error) {
	now := c.opt.Clock.Now()
	nc := context.WithoutCancel(ctx)
	var status wharf.RelocationStatus
	if a.req.Manual {
		status |= wharf.RelocationManual
	}
	if res != nil {
		status |= res.Status
	}
	var plan *relocate.Plan
	if res != nil {
		plan = res.Plan
	}
	c.mu.Lock()
	st := &c.st
	if a.consolided {
		status |= wharf.RelocationConsolidated
	}
	if res != nil && !res.Canceled && err == nil && res.Status&wharf.RelocationPrerequisites == 0 {
		c.mu.Unlock()
		where := c.locations(nc)
		c.mu.Lock()
		a.settlePending(where, a.req.Target)
	}
	linked, failed := 0, 0
	for _, p := range a.pkgs {
		switch p.State {
		case api.RelocationLinked:
			linked++
		case api.RelocationFailed:
			failed++
		}
	}
	result, msg := "", ""
	switch {
	case a.shutdown:
		// The PS is stopping: the attempt goes on at the next start
		// (Running stays set), and reports then.
		c.log.Info("relocation attempt interrupted by the package server stopping; it goes on at the next start",
			"target", a.req.Target)
		c.mu.Unlock()
		return
	case err != nil && (res == nil || !res.Canceled || a.stopping == ""):
		result = "error"
		status &^= wharf.RelocationSuccess | wharf.RelocationSomeNotMoved
		msg = fmt.Sprintf("relocation to %s stopped: %v", a.req.Target, err)
		c.failures++
		c.resumeAt = now.Add(min(c.opt.Interval, time.Duration(c.failures)*30*time.Second))
		if samePath(st.Target, st.StoragePath) {
			st.NextRetry = c.resumeAt // a retry that failed: again later
		}
	case res.Canceled:
		result = "canceled"
		status &^= wharf.RelocationSuccess | wharf.RelocationSomeNotMoved
		msg = fmt.Sprintf("relocation to %s stopped between packages: %s", a.req.Target, a.stopping)
	case status&wharf.RelocationPrerequisites != 0:
		result = "refused"
		msg = fmt.Sprintf("relocation to %s refused: %s", a.req.Target, strings.Join(prerequisiteFailures(plan), "; "))
	default:
		c.failures = 0
		st.StoragePath = st.Target
		if linked+failed > 0 {
			result = "warning"
			status = status&^wharf.RelocationSuccess | wharf.RelocationSomeNotMoved
			msg = wharf.RelocationWarning
			if st.AttemptsDone < c.opt.MaxAttempts {
				st.NextRetry = now.Add(c.opt.Interval)
			} else {
				st.NextRetry = time.Time{}
				status |= wharf.RelocationRetriesExhausted
			}
		} else {
			result = "success"
			status = status&^wharf.RelocationSomeNotMoved | wharf.RelocationSuccess
			st.NextRetry = time.Time{}
			msg = fmt.Sprintf("Every package is at the new location %s.", a.req.Target)
		}
	}
	c.lastFailed = failed > 0
	st.Running = false
	st.LastStatus, st.LastMessage = status, msg
	pkgs := a.packagesLocked(true)
	attempts := st.AttemptsDone
	c.mu.Unlock()

	ev := c.event(nc, a.req.Target, a.started, status, attempts, msg, plan, pkgs, nil)
	c.mu.Lock()
	st.LastEvent, st.EventSent = &ev, false
	if serr := c.opt.State.SaveRelocationState(nc, *st); serr != nil {
		c.log.Error("save relocation state", "err", serr)
	}
	c.mu.Unlock()
	c.send.final(ev)
	c.met.attempts.WithLabelValues(a.kind, result).Inc()
	c.met.lastStatus.Set(float64(status))
	log := c.log.With("kind", a.kind, "target", a.req.Target, "status", status.String(), "result", result,
		"attempts_done", attempts, "max_attempts", c.opt.MaxAttempts, "packages", len(pkgs), "linked", linked, "failed", failed)
	if res != nil {
		log = log.With("moved", res.Moved, "bytes_copied", res.BytesCopied, "elapsed", res.Finished.Sub(res.Started).Round(time.Millisecond))
	}
	switch result {
	case "success":
		log.Info("relocation attempt done: every package is at the target")
	case "warning":
		log.Warn("relocation attempt done: " + wharf.RelocationWarning)
	default:
		log.Warn("relocation attempt ended", "message", msg)
	}
}

// prerequisiteFailures names the prerequisites a plan failed, with why.
func prerequisiteFailures(p *relocate.Plan) []string {
	if p == nil {
		return nil
	}
	var out []string
	for _, c := range p.Prerequisites {
		if !c.OK && !c.Skipped {
			out = append(out, c.Name+": "+c.Detail)
		}
	}
	return out
}

// usage is the bytes of this PS's packages on a target's volume (used) and
// of all the packages relocation moves (required).
type usage struct{ used, required uint64 }

// event builds a Package Location Status event (SPEC §6.7) for an attempt
// toward target. u, when set, is the usage counted a moment ago.
func (c *Controller) event(ctx context.Context, target string, started time.Time, status wharf.RelocationStatus,
	attempts int, msg string, plan *relocate.Plan, pkgs []api.RelocationPackage, u *usage) api.LocationStatus {
	ev := api.LocationStatus{
		StoragePath: target, LastAttempt: started.UTC(), LastStatus: uint32(status), LastStatusFlags: status.Names(),
		AttemptsDone: attempts, MaxAttempts: c.opt.MaxAttempts, Message: truncate(msg, maxMessage), Packages: pkgs,
	}
	info, verr := c.opt.Facts.Stat(target)
	if verr == nil {
		ev.VolumeTotalMB, ev.VolumeFreeMB = int64(info.TotalBytes>>20), int64(info.AvailBytes>>20)
	}
	if u == nil {
		u = c.usage(ctx, info, verr == nil)
	}
	ev.PSUsedMB, ev.VolumeRequiredMB = int64(mibUp(u.used)), int64(mibUp(u.required))
	if plan != nil {
		ev.VolumeRequiredMB = int64(plan.RequiredMiB)
		for _, p := range plan.Prerequisites {
			ev.Prerequisites = append(ev.Prerequisites, api.Prerequisite{Name: p.Name, OK: p.OK, Detail: p.Detail})
		}
	}
	return ev
}

// usage returns the bytes of this PS's packages on the volume of info (when
// known) and the bytes of all its packages that relocation moves.
func (c *Controller) usage(ctx context.Context, info volume.Info, known bool) *usage {
	devs := map[string]uint64{}
	u := &usage{}
	err := c.eachPackage(ctx, func(p relocate.Package) {
		if !p.Custom {
			u.required += uint64(p.Size)
		}
		if !known {
			return
		}
		root := filepath.Dir(filepath.Clean(p.Folder))
		dev, ok := devs[root]
		if !ok {
			vi, err := c.opt.Facts.Stat(root)
			if err == nil {
				dev = vi.DevID
			}
			devs[root] = dev
		}
		if dev != 0 && dev == info.DevID {
			u.used += uint64(p.Size)
		}
	})
	if err != nil {
		c.log.Warn("count the packages' bytes for the location status", "err", err)
	}
	return u
}

func mibUp(b uint64) uint64 { return (b + 1<<20 - 1) >> 20 }

// maxMessage is the longest message the NS takes in an event (its reasons
// may quote a target path of 4095 bytes, or more than one).
const maxMessage = 4096

// truncate shortens s to at most n bytes, on a character boundary, marking
// the cut with "...".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// answerTask answers a check-location task with the plan.
func (c *Controller) answerTask(ctx context.Context, t api.Task) {
	var res api.TaskResult
	switch t.Type {
	case api.TaskCheckLocation:
		plan, err := c.Plan(ctx, t.Path)
		if err != nil {
			res.Error = fmt.Sprintf("evaluate %s: %v", t.Path, err)
		} else {
			res.Plan = LocationPlan(plan)
		}
		c.log.Info("storage location checked for the NS", "task", t.ID, "path", t.Path, "ok", plan != nil && plan.OK)
	default:
		res.Error = fmt.Sprintf("unknown task type %q", t.Type)
	}
	c.complete(ctx, t, res)
}

// complete answers a task, retrying a few times; a task whose answer did
// not get through is taken again from a later configuration.
func (c *Controller) complete(ctx context.Context, t api.Task, res api.TaskResult) {
	backoff := clock.Backoff{Base: time.Second, Max: 30 * time.Second}
	for i := 0; ; i++ {
		err := c.opt.NS.CompleteTask(ctx, c.opt.Server, t.ID, res)
		if err == nil || errors.Is(err, wharf.ErrNotFound) {
			return
		}
		if i >= 4 || ctx.Err() != nil {
			c.log.Warn("answer server task", "task", t.ID, "type", t.Type, "err", err)
			if t.Type != api.TaskRetryRelocation {
				c.mu.Lock()
				delete(c.tasks, t.ID) // taken again with a later configuration
				c.mu.Unlock()
			}
			return
		}
		if clock.Sleep(ctx, c.opt.Clock, backoff.Delay(i)) != nil {
			return
		}
	}
}

// LocationPlan maps an engine plan to the NS's wire form (SPEC §6.5).
func LocationPlan(p *relocate.Plan) *api.LocationPlan {
	out := &api.LocationPlan{
		Path: p.Target, Status: uint32(p.Status), StatusFlags: p.Status.Names(),
		NeededMB: int64(p.NeededMiB), FreeMB: int64(p.FreeMiB), PathLimit: p.PathLimit,
		LongestPath: volume.DefaultLimits().Len(p.CheckedPath), RenamePackages: p.ByRename, CopyPackages: p.ByCopy,
		CopyBytes: p.CopyBytes, EstimateSeconds: int64(p.EstimateSeconds + 0.999),
	}
	if p.CheckedPath == "" {
		out.LongestPath = p.LongestPathLen
	}
	for _, c := range p.Prerequisites {
		out.Prerequisites = append(out.Prerequisites, api.Prerequisite{Name: c.Name, OK: c.OK, Detail: c.Detail})
	}
	return out
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
