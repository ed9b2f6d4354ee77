package location

import (
	"path/filepath"
	"sort"

	"github.com/wharf-project/wharf/internal/api"
)

// retire removes the store roots an attempt left empty (storeroot's
// Retire: the marker, empty temporary folders, the root folder itself when
// Wharf made it), so no empty "Package Delivery" with Wharf's bookkeeping
// stays behind on the volumes a consolidation emptied, nor the target of an
// attempt canceled for another one before anything stayed there. A root
// the state DB still names for a package's folder or link, a root where a
// download or copy is under way, and the location the store is at or moving
// to stay.
func (c *Controller) retire(a *attempt, result string) {
	c.mu.Lock()
	st := c.st
	desired := c.desiredLocked()
	var cands []string
	switch result {
	case api.OutcomeSuccess, api.OutcomeWarning:
		for r := range a.roots {
			cands = append(cands, r)
		}
		if a.req.From != "" {
			cands = append(cands, filepath.Clean(a.req.From))
		}
	case api.OutcomeCanceled:
		cands = append(cands, filepath.Clean(a.req.Target))
	}
	c.mu.Unlock()
	sort.Strings(cands)
	for i, root := range cands {
		if i > 0 && cands[i-1] == root {
			continue
		}
		if samePath(root, st.StoragePath) || samePath(root, desired) || result != api.OutcomeCanceled && samePath(root, st.Target) ||
			c.opt.State.UsesRoot(root) {
			continue
		}
		gone, err := c.roots.Retire(root)
		switch {
		case err != nil:
			c.log.Warn("retire an empty store root", "root", root, "err", err)
		case gone:
			c.log.Info("retired a store root that holds nothing any more", "root", root)
		}
	}
}
