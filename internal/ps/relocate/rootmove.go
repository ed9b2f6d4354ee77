package relocate

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/wharf-project/wharf/internal/ps/storeroot"
)

// errNotWhole ends the listing of packages when one rules out moving the
// root as a whole.
var errNotWhole = errors.New("not a whole root")

// moveRoot is Run's fast path on one volume: when the attempt takes a new
// target (not a retry) and every package it moves is in one store root —
// the previous location, From — on the target's volume, with no package
// rotated elsewhere, behind a link, or at the target already, the root
// itself is renamed to the target in one call (storeroot.Roots.MoveRoot,
// which also makes sure nothing writes into either root and that the root
// holds nothing else), and every package is switched in one transaction
// (Index.SetRoot), under one journal entry (KindRoot). A store of 100,000
// packages then moves in the time of a rename and one commit instead of
// 100,000 of each.
//
// It reports whether it moved the store; false with a nil error means the
// per-package moves do the work (nothing was changed). Custom-location
// packages are never in the root that moves (a custom location is a root
// of its own).
func (e *Engine) moveRoot(ctx context.Context, rs *runState, plan *Plan, record func(PackageResult)) (bool, error) {
	from := filepath.Clean(rs.from)
	switch {
	case rs.retry, rs.from == "", plan.ByRename == 0, plan.ByCopy > 0, plan.Relinks > 0, plan.Rotated > 0, plan.AlreadyThere > 0,
		samePath(from, rs.target), isBelow(rs.target, from), isBelow(from, rs.target):
		return false, nil
	}
	ids := map[string]bool{}
	var pkgs []Package
	err := e.eachPackage(ctx, func(p Package) error {
		inRoot := samePath(filepath.Dir(filepath.Clean(p.Folder)), from)
		switch {
		case p.Custom && inRoot, !p.Custom && (!inRoot || p.Link != ""):
			return errNotWhole
		case !p.Custom:
			ids[string(p.ID)] = true
			pkgs = append(pkgs, p)
		}
		return nil
	})
	switch {
	case errors.Is(err, errNotWhole):
		return false, nil
	case err != nil:
		return false, err
	case len(pkgs) != plan.ByRename:
		return false, nil // the store changed since the plan
	}
	nc := context.WithoutCancel(ctx)
	ent := Entry{Key: "root:" + from, Kind: KindRoot, Step: StepRename, Target: rs.target, Source: from, Dest: rs.target}
	begun := false
	err = e.roots.MoveRoot(from, rs.target, func(name string) bool { return ids[name] }, func() error {
		if err := e.begin(nc, ent); err != nil {
			return err
		}
		begun = true
		return nil
	})
	log := e.log.With("from", from, "to", rs.target, "packages", len(pkgs))
	switch {
	case err != nil && !begun:
		if errors.Is(err, storeroot.ErrNotWhole) {
			log.Info("the store cannot move as one root; moving package by package", "reason", err)
			return false, nil
		}
		var fe *fatalError
		if errors.As(err, &fe) {
			return false, err
		}
		log.Info("the store cannot move as one root; moving package by package", "err", err)
		return false, nil
	case err != nil:
		// The entry is open: let the disk say what happened.
		log.Warn("moving the store root failed; recovering from the disk", "err", err)
		r, rerr := e.recoverEntry(nc, ent)
		if rerr != nil {
			return false, rerr
		}
		if r.Outcome != Moved {
			return false, nil // it stayed where it was: package by package
		}
	default:
		if _, err := e.index.SetRoot(nc, from, rs.target); err != nil {
			return false, fatal("switch the packages of root %s to %s: %w", from, rs.target, err)
		}
		if err := e.close(nc, ent.Key); err != nil {
			return false, err
		}
	}
	log.Info("moved the whole store root with one rename")
	for _, p := range pkgs {
		record(PackageResult{Package: p.ID, Outcome: Moved, Method: "rename", From: p.Folder,
			Path: storeroot.PackageDir(rs.target, string(p.ID))})
	}
	return true, nil
}
