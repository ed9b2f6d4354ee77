package relocate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"

	"github.com/wharf-project/wharf/internal/ps/fsys"
)

// Recover brings every open journal entry to an end, rolling it forward or
// back from what is on disk (see "Recover" in the package doc): a partial
// copy is discarded, a rename that happened before its switch is switched,
// a staged package is placed and switched, a half-removed old folder and
// other leftovers are removed. Call it at start, before serving; Run calls
// it too. It is idempotent: a second call changes nothing. An entry whose
// disk state cannot be understood, or whose leftovers still cannot be
// removed, stays open and is logged; the error is for the journal or index
// failing, or ctx ending (checked between entries).
func (e *Engine) Recover(ctx context.Context) error {
	if !e.busy.TryLock() {
		return errBusy
	}
	defer e.busy.Unlock()
	return e.recover(ctx)
}

func (e *Engine) recover(ctx context.Context) error {
	e.dirs = &dirSet{made: map[string]bool{}}
	if e.group != nil {
		e.group.forget()
	}
	entries, err := e.journal.List(ctx)
	if err != nil {
		return fmt.Errorf("recover relocation: list journal: %w", err)
	}
	nc := context.WithoutCancel(ctx)
	temps := map[string]bool{}
	for _, ent := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := e.recoverEntry(nc, ent)
		if err != nil {
			return fmt.Errorf("recover relocation: %w", err)
		}
		e.log.Info("recovered journal entry", "key", ent.Key, "kind", ent.Kind, "step", ent.Step,
			"package", ent.Package, "state", r.Outcome, "reason", r.Reason)
		if ent.Temp != "" {
			temps[filepath.Dir(ent.Temp)] = true
		}
	}
	for _, t := range slices.Sorted(maps.Keys(temps)) {
		e.tidyTemp(t)
	}
	return nil
}

// recoverEntry ends one open entry; the error is fatal only.
func (e *Engine) recoverEntry(nc context.Context, ent Entry) (PackageResult, error) {
	res := PackageResult{Package: ent.Package, From: ent.Source, Path: ent.Source}
	switch ent.Kind {
	case KindMove:
		switch ent.Step {
		case StepRename:
			// Did the rename happen? Dest holds the folder and Source
			// is gone: forward. Source is there: it did not; back.
			res.Method = "rename"
			if e.isDir(ent.Dest) && e.missing(ent.Source) {
				return e.finishRename(nc, ent, res)
			}
			return e.rollBack(nc, ent, res)
		case StepStageRename:
			res.Method = "rename"
			if e.isDir(ent.Temp) && e.missing(ent.Source) {
				if err := e.syncDirs(ent.Temp, ent.Source); err != nil {
					return failed(res, classify(err), "%v", err), nil
				}
				if err := e.advance(nc, ent.Key, StepStaged); err != nil {
					return res, err
				}
				ent.Step = StepStaged
				return e.finishStaged(nc, ent, res)
			}
			return e.rollBack(nc, ent, res)
		case StepCopy:
			// Nothing is switched before staged: discard the copy.
			res.Method = "copy"
			if err := e.discardCopy(nc, ent); err != nil {
				return res, err
			}
			return failed(res, CauseOther, "an interrupted copy was discarded; the package stays where it was"), nil
		case StepStaged:
			return e.finishStaged(nc, ent, res)
		}
	case KindLink:
		res.Method = "link"
		fi, err := e.fs.Lstat(ent.Dest)
		if err == nil && fsys.IsLink(fi) {
			if t, err := e.fs.Readlink(ent.Dest); err == nil && samePath(t, ent.Source) {
				return e.finishLink(nc, ent, res)
			}
		}
		if err != nil && !errors.Is(err, errNotExist) {
			return failed(res, classify(err), "%v", err), nil
		}
		// The link was never made (or a crash undid it): the package is
		// where it was, unlinked there.
		if err := e.restore(nc, ent); err != nil {
			return res, err
		}
		return failed(res, CauseOther, "an interrupted link was rolled back"), e.close(nc, ent.Key)
	case KindRoot:
		// Did the rename happen? Dest holds the root and Source is gone:
		// switch every package (again: SetRoot is idempotent). Source is
		// there: it did not, and the index never changed.
		res.Method = "rename"
		switch {
		case e.isDir(ent.Dest) && e.missing(ent.Source):
			if _, err := e.index.SetRoot(nc, ent.Source, ent.Dest); err != nil {
				return res, fatal("switch the packages of root %s to %s: %w", ent.Source, ent.Dest, err)
			}
			res.Outcome, res.Path = Moved, ent.Dest
			return res, e.close(nc, ent.Key)
		case e.isDir(ent.Source):
			res.Outcome, res.Cause, res.Reason = Failed, CauseOther, "the root did not move"
			return res, e.close(nc, ent.Key)
		}
		return failed(res, CauseOther, "root %s is neither at %s nor at %s; the journal entry stays open", ent.Source, ent.Source, ent.Dest), nil
	case KindLeftover:
		res.Path = ent.Path
		return res, e.removeLeftover(nc, ent)
	}
	e.log.Error("unknown journal entry left open", "key", ent.Key, "kind", ent.Kind, "step", ent.Step)
	return failed(res, CauseOther, "unknown journal entry %s %s", ent.Kind, ent.Step), nil
}

// isDir reports a folder (not a link) at path.
func (e *Engine) isDir(path string) bool {
	fi, err := e.fs.Lstat(path)
	return err == nil && fi.IsDir() && !fsys.IsLink(fi)
}

// missing reports that nothing is at path.
func (e *Engine) missing(path string) bool {
	_, err := e.fs.Lstat(path)
	return errors.Is(err, errNotExist)
}
