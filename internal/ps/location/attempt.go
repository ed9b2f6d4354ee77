package location

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/wharf"
)

// attempt is one relocation attempt under way.
type attempt struct {
	kind    string
	req     relocate.Request
	mode    string
	started time.Time
	cancel  context.CancelFunc
	change  int // Controller.changes when it started: its plan decides that change
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
	usage      *usage          // the packages' bytes, counted for progress events now and then
	roots      map[string]bool // the store roots the packages moved from: retired when emptied
	ended      bool            // finish began: no more progress events
}

// addLocked lists packages the attempt touches, as pending, and remembers
// the roots they are in; Controller.mu is held.
func (a *attempt) addLocked(pkgs []relocate.Package) {
	for _, p := range pkgs {
		if _, ok := a.pkgs[p.ID]; !ok {
			a.pkgs[p.ID] = &api.RelocationPackage{PackageID: string(p.ID), State: api.RelocationPending, Path: p.Folder}
			a.order = append(a.order, p.ID)
		}
		a.roots[filepath.Dir(filepath.Clean(p.Folder))] = true
		if p.Link != "" {
			a.roots[filepath.Dir(filepath.Clean(p.Link))] = true
		}
	}
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

// start begins the attempt act says; c.mu is held.
func (c *Controller) start(ctx context.Context, act action) {
	now := c.opt.Clock.Now()
	st := &c.st
	switch act.kind {
	case KindAutomatic:
		st.AttemptsDone++
		st.NextRetry = time.Time{}
	case KindPolicy:
		if !samePath(act.target, st.Target) {
			st.AttemptsDone, st.NextRetry = 0, time.Time{}
		}
	}
	st.Running, st.RunRetry, st.RunManual, st.Mode = true, act.retry, act.manual, c.mode
	st.LastTried, st.LastAttempt = act.target, now
	if err := c.opt.State.SaveRelocationState(context.WithoutCancel(ctx), *st); err != nil {
		c.log.Error("save relocation state", "err", err)
	}
	c.met.attemptsDone.Set(float64(st.AttemptsDone))
	actx, cancel := context.WithCancel(ctx)
	kind := act.kind
	if kind == KindCatchUp {
		kind = KindResume // counted and reported as the attempt it finishes
	}
	a := &attempt{kind: kind, req: c.request(act.target, act.retry, act.manual), mode: c.mode, started: now, cancel: cancel,
		change: c.changes, done: make(chan struct{}), pkgs: map[wharf.PackageID]*api.RelocationPackage{},
		roots: map[string]bool{}}
	if act.from != "" {
		a.req.From = act.from
	}
	c.run = a
	c.log.Info("relocation attempt starting", "kind", act.kind, "target", act.target, "from", a.req.From, "retry", act.retry,
		"manual", act.manual, "mode", a.mode, "attempts_done", st.AttemptsDone, "max_attempts", c.opt.MaxAttempts)
	c.met.running.Set(1)
	if c.opt.Downloads != nil {
		c.opt.Downloads.HoldRemovals()
	}
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
		if c.opt.Downloads != nil {
			c.opt.Downloads.ReleaseRemovals()
		}
		if c.opt.Links != nil {
			c.opt.Links.Poke()
		}
		c.wakeUp()
	}()
	decided := false
	decide := func() {
		if !decided {
			decided = true
			c.mu.Lock()
			c.decidedLocked(a.change)
			c.mu.Unlock()
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
	result := c.finish(ctx, a, res, err)
	if parent.Err() == nil {
		c.retire(a, result)
	}
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
		c.opt.Placer.Pause(PauseExclusive)
		if c.opt.Serving != nil {
			c.opt.Serving.Unavailable(c.opt.RetryAfter)
		}
	}
	pkgs, err := c.selected(ctx, a.req)
	if err != nil {
		c.log.Warn("list the packages of the attempt", "err", err)
	}
	c.mu.Lock()
	a.addLocked(pkgs)
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
		c.opt.Placer.Resume(PauseExclusive)
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
		a.addLocked(left)
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

// addUnseen lists as linked the packages still behind a link at target
// that the attempt did not see: the relocation index leaves out packages
// on an unavailable store root (a volume not mounted), so an attempt never
// touches them, yet they are not at the target; without them an attempt
// would report success while packages are not there. Controller.mu is held.
func (a *attempt) addUnseen(behind map[string]string, where map[wharf.PackageID]relocate.Location, target string) {
	if where == nil {
		return // the index could not be read: nothing to tell seen from unseen
	}
	for id, link := range behind {
		pid := wharf.PackageID(id)
		if _, seen := a.pkgs[pid]; seen || !samePath(filepath.Dir(filepath.Clean(link)), target) {
			continue
		}
		if _, indexed := where[pid]; indexed {
			continue // available, and behind its link because it was never moved: not this attempt's business
		}
		a.pkgs[pid] = &api.RelocationPackage{PackageID: id, State: api.RelocationLinked, Path: link,
			Reason: "not moved: its folder is on a store root that is unavailable (volume not mounted?)"}
		a.order = append(a.order, pid)
	}
}

// eventPackagesLocked returns the per-package rows of an event, in the
// order the packages were met, their counts by state, and how many rows
// were left out: every package while there are at most
// api.MaxEventPackages; above that only those that did not move (pending
// ones only when withPending), at most api.MaxEventPackages. Called with
// c.mu held.
func (a *attempt) eventPackagesLocked(withPending bool) ([]api.RelocationPackage, *api.RelocationCounts, int) {
	counts := &api.RelocationCounts{}
	all := len(a.order) <= api.MaxEventPackages
	var out []api.RelocationPackage
	omitted := 0
	for _, id := range a.order {
		p := a.pkgs[id]
		keep := all
		switch p.State {
		case api.RelocationMoved:
			counts.Moved++
		case api.RelocationLinked:
			counts.Linked++
			keep = true
		case api.RelocationFailed:
			counts.Failed++
			keep = true
		default:
			counts.Pending++
			keep = keep || withPending
		}
		switch {
		case keep && len(out) < api.MaxEventPackages:
			out = append(out, *p)
		case keep, !all:
			omitted++
		}
	}
	return out, counts, omitted
}

// finish records the end of an attempt: counters, status, the storage path
// in effect, the next retry; then it sends the event that ends the attempt.
func (c *Controller) finish(ctx context.Context, a *attempt, res *relocate.Result, err error) (result string) {
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
	a.ended = true // no progress event from here on
	st := &c.st
	if a.consolided {
		status |= wharf.RelocationConsolidated
	}
	if res != nil && !res.Canceled && err == nil && res.Status&wharf.RelocationPrerequisites == 0 {
		c.mu.Unlock()
		where := c.locations(nc)
		behind, lerr := c.opt.State.Links(nc)
		c.mu.Lock()
		a.settlePending(where, a.req.Target)
		if lerr != nil {
			c.log.Warn("list the packages behind links after an attempt", "err", lerr)
		}
		a.addUnseen(behind, where, a.req.Target)
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
	msg := ""
	switch {
	case a.shutdown:
		// The PS is stopping: the attempt goes on at the next start
		// (Running stays set), and reports then.
		c.log.Info("relocation attempt interrupted by the package server stopping; it goes on at the next start",
			"target", a.req.Target)
		c.mu.Unlock()
		return "interrupted"
	case err != nil && (res == nil || !res.Canceled || a.stopping == ""):
		result = api.OutcomeError
		status &^= wharf.RelocationSuccess | wharf.RelocationSomeNotMoved
		msg = fmt.Sprintf("relocation to %s stopped: %v", a.req.Target, err)
		c.failures++
		c.resumeAt = now.Add(min(c.opt.Interval, time.Duration(c.failures)*30*time.Second))
		if samePath(st.Target, st.StoragePath) {
			st.NextRetry = c.resumeAt // a retry that failed: again later
		}
	case res.Canceled:
		result = api.OutcomeCanceled
		status &^= wharf.RelocationSuccess | wharf.RelocationSomeNotMoved
		msg = fmt.Sprintf("relocation to %s stopped between packages: %s", a.req.Target, a.stopping)
	case status&wharf.RelocationPrerequisites != 0:
		result = api.OutcomeRefused
		msg = fmt.Sprintf("relocation to %s refused: %s", a.req.Target, strings.Join(prerequisiteFailures(plan), "; "))
	default:
		c.failures = 0
		st.StoragePath = st.Target
		if linked+failed > 0 {
			result = api.OutcomeWarning
			status = status&^wharf.RelocationSuccess | wharf.RelocationSomeNotMoved
			msg = wharf.RelocationWarning
			if st.AttemptsDone < c.opt.MaxAttempts {
				st.NextRetry = now.Add(c.opt.Interval)
			} else {
				st.NextRetry = time.Time{}
				status |= wharf.RelocationRetriesExhausted
			}
		} else {
			result = api.OutcomeSuccess
			status = status&^wharf.RelocationSomeNotMoved | wharf.RelocationSuccess
			st.NextRetry = time.Time{}
			msg = fmt.Sprintf("Every package is at the new location %s.", a.req.Target)
		}
	}
	c.lastFailed = failed > 0
	st.Running = false
	st.LastStatus, st.LastMessage = status, msg
	pkgs, counts, omitted := a.eventPackagesLocked(true)
	attempts, inEffect := st.AttemptsDone, st.StoragePath
	c.mu.Unlock()

	ev := c.event(nc, a.req.Target, a.started, status, attempts, msg, plan, pkgs, nil)
	ev.PackageCounts, ev.PackagesOmitted = counts, omitted
	ev.StoragePathInEffect, ev.Outcome = inEffect, result
	if c.opt.Links != nil {
		ev.Links = c.opt.Links.Latest()
	}
	c.mu.Lock()
	st.LastEvent, st.EventSent = &ev, false
	if serr := c.opt.State.SaveRelocationState(nc, *st); serr != nil {
		c.log.Error("save relocation state", "err", serr)
	}
	c.send.final(ev)
	c.mu.Unlock()
	c.met.attempts.WithLabelValues(a.kind, result).Inc()
	c.met.lastStatus.Set(float64(status))
	log := c.log.With("kind", a.kind, "target", a.req.Target, "status", status.String(), "result", result,
		"attempts_done", attempts, "max_attempts", c.opt.MaxAttempts, "packages", len(a.order), "linked", linked, "failed", failed)
	if res != nil {
		log = log.With("moved", res.Moved, "bytes_copied", res.BytesCopied, "elapsed", res.Finished.Sub(res.Started).Round(time.Millisecond))
	}
	switch result {
	case api.OutcomeSuccess:
		log.Info("relocation attempt done: every package is at the target")
	case api.OutcomeWarning:
		log.Warn("relocation attempt done: " + wharf.RelocationWarning)
	default:
		log.Warn("relocation attempt ended", "message", msg)
	}
	return result
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
