package location

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
	"unicode/utf8"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/ps/volume"
	"github.com/wharf-project/wharf/internal/wharf"
)

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
	pkgs, counts, omitted := a.eventPackagesLocked(false)
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
	ev.StoragePathInEffect = st.StoragePath
	ev.Message = fmt.Sprintf("relocating to %s", a.req.Target)
	ev.PackageCounts, ev.PackagesOmitted = counts, omitted
	prog := &api.RelocationProgress{BytesDone: p.BytesDone, BytesTotal: p.BytesTotal, PackagesDone: p.PackagesDone,
		PackagesTotal: p.PackagesTotal, StartedAt: a.started, ETASeconds: int64(p.ETA(now).Seconds())}
	if first || !p.Running {
		prog.StartedAt, prog.BytesTotal, prog.PackagesTotal = a.started, plan.CopyBytes, plan.ByCopy+plan.ByRename
	}
	ev.Progress = prog
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.run == a && a.stopping == "" && !a.ended {
		a.progress = &ev
		a.usage = &usage{used: uint64(ev.PSUsedMB) << 20, required: uint64(ev.VolumeRequiredMB) << 20}
		// Queued under the lock finish takes to queue the final event:
		// a progress event never goes out after the one that ends the
		// attempt.
		c.send.progress(ev)
	}
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
