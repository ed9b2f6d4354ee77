package location

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Status is the relocation state `wharf ps status` shows.
type Status struct {
	// StoragePath is the location in effect; Target where the store is
	// moving or last moved to; Location the one the policy asks for.
	StoragePath string `json:"storage_path"`
	Target      string `json:"target"`
	Location    string `json:"policy_location,omitempty"`
	// Mode is the relocation mode of the last configuration.
	Mode string `json:"mode"`
	// Running is set while an attempt runs, of Kind.
	Running bool   `json:"running"`
	Kind    string `json:"kind,omitempty"`
	// The counters of SPEC §6.2 and the last attempt's status.
	AttemptsDone    int       `json:"attempts_done"`
	MaxAttempts     int       `json:"max_attempts"`
	NextRetry       time.Time `json:"next_retry,omitzero"`
	LastStatus      uint32    `json:"last_status"`
	LastStatusFlags []string  `json:"last_status_flags"`
	LastAttempt     time.Time `json:"last_attempt,omitzero"`
	Message         string    `json:"message,omitempty"`
	// Event is the running attempt's last progress event (per-package
	// states and progress), or the event that ended the last attempt.
	Event *api.LocationStatus `json:"event,omitempty"`
	// JournalOpen counts the open journal entries: moves in flight and
	// leftovers not removed yet.
	JournalOpen int `json:"journal_open"`
}

// Status returns the relocation state.
func (c *Controller) Status(ctx context.Context) Status {
	c.mu.Lock()
	st := c.st
	out := Status{
		StoragePath: st.StoragePath, Target: st.Target, Mode: c.mode, AttemptsDone: st.AttemptsDone,
		MaxAttempts: c.opt.MaxAttempts, NextRetry: st.NextRetry, LastStatus: uint32(st.LastStatus),
		LastStatusFlags: st.LastStatus.Names(), LastAttempt: st.LastAttempt, Message: st.LastMessage, Event: st.LastEvent,
	}
	if c.haveConfig {
		out.Location = c.location
	}
	if a := c.run; a != nil && !a.ended { // ended: the final event is out; only tidying is left
		out.Running, out.Kind = true, a.kind
		s := wharf.RelocationInProgress
		if a.req.Manual {
			s |= wharf.RelocationManual
		}
		out.LastStatus, out.LastStatusFlags, out.LastAttempt = uint32(s), s.Names(), a.started
		out.Message = "relocating to " + a.req.Target
		if a.progress != nil {
			ev := *a.progress
			ev.Packages, ev.PackageCounts, ev.PackagesOmitted = a.eventPackagesLocked(true)
			out.Event = &ev
		}
	}
	c.mu.Unlock()
	if p := c.eng.Progress(); out.Running && p.Running && out.Event != nil && out.Event.Progress != nil {
		ev := *out.Event
		prog := *ev.Progress
		prog.BytesDone, prog.BytesTotal, prog.PackagesDone, prog.PackagesTotal = p.BytesDone, p.BytesTotal, p.PackagesDone, p.PackagesTotal
		prog.ETASeconds = int64(p.ETA(c.opt.Clock.Now()).Seconds())
		ev.Progress = &prog
		out.Event = &ev
	}
	if open, err := c.opt.Journal.List(ctx); err == nil {
		out.JournalOpen = len(open)
	}
	return out
}

// tidyLinks removes, from the store root at root, links named after a
// package that point nowhere and that the index does not record: what is
// left of a linked package that was unassigned and removed. Only such links
// are touched (Wharf made them); nothing runs while an attempt does.
func (c *Controller) tidyLinks(ctx context.Context, root string) {
	entries, err := c.opt.FS.ReadDir(root)
	if err != nil {
		return
	}
	var links map[string]string
	for _, e := range entries {
		if _, err := wharf.ParsePackageID(e.Name()); err != nil {
			continue
		}
		p := filepath.Join(root, e.Name())
		fi, err := c.opt.FS.Lstat(p)
		if err != nil || !fsys.IsLink(fi) {
			continue
		}
		if _, err := c.opt.FS.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			continue // it leads somewhere: not ours to judge
		}
		if links == nil {
			if links, err = c.opt.State.Links(ctx); err != nil {
				return
			}
		}
		if samePath(links[e.Name()], p) {
			continue
		}
		if err := c.opt.FS.Remove(p); err != nil {
			c.log.Warn("remove a dangling package link", "path", p, "err", err)
			continue
		}
		if err := c.opt.FS.SyncDir(root); err != nil {
			c.log.Warn("sync after removing a dangling package link", "path", root, "err", err)
		}
		c.log.Info("removed the link of a package that is gone", "path", p)
	}
}
