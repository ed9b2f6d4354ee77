package location

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/clock"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/ps/volume"
	"github.com/wharf-project/wharf/internal/wharf"
)

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
