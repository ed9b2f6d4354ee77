package fetch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
)

// Recover brings the store roots and the index in line after a stop or a
// crash, before anything is served: it checks every root's marker, empties
// trash folders, removes temporary folders of packages that are not being
// downloaded (those of packages still downloading are kept to resume), and
// records as ready a package folder found whole in place. Nothing in an
// unavailable root is touched. Running it twice changes nothing more.
//
// That every ready package's files are still there with their sizes (they
// were made durable before the package was recorded ready; only something
// else can have taken them) is checked by Serve as it starts, while the
// packages are already served: a restart of a store of 100,000 packages
// does not wait for a stat of every file.
func (f *Fetcher) Recover(ctx context.Context) error {
	f.checkRoots(ctx)
	for _, root := range f.opt.Store.Roots() {
		if f.opt.Store.RootUnavailable(root) != "" {
			continue
		}
		if err := f.roots.EmptyTrash(root); err != nil {
			f.log.Error("empty trash", "root", root, "err", err)
		}
		tmpRoot := filepath.Join(root, storeroot.DownloadDir)
		entries, err := f.fs.ReadDir(tmpRoot)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("recover store root %s: %w", root, err)
		}
		for _, e := range entries {
			p, ok := f.opt.Store.Get(e.Name())
			if ok && p.Root == root && p.State != api.StateReady {
				f.log.Info("download to resume", "package", p.ID, "path", filepath.Join(tmpRoot, e.Name()))
				continue
			}
			if err := f.roots.Trash(root, filepath.Join(tmpRoot, e.Name())); err != nil {
				return fmt.Errorf("recover store root %s: %w", root, err)
			}
			f.log.Info("removed leftover temporary folder", "path", filepath.Join(tmpRoot, e.Name()))
		}
	}
	for _, p := range f.opt.Store.List() {
		if p.Unavailable != "" {
			continue
		}
		if p.State == api.StateReady {
			continue // checked by Serve (checkAllReady)
		}
		if _, err := f.fs.Lstat(p.Path); err != nil {
			continue
		}
		full, _ := f.opt.Store.Get(p.ID)
		mtimes, err := f.verifyDir(full.Path, full.Files)
		if err == nil {
			if err := f.opt.Store.MarkReady(ctx, p.ID, mtimes, f.opt.Clock.Now()); err != nil {
				return fmt.Errorf("recover package %s: %w", p.ID, err)
			}
			f.log.Info("package found whole in place after a stop; ready", "package", p.ID, "path", p.Path)
			continue
		}
		f.log.Warn("discarding damaged package folder", "package", p.ID, "path", p.Path, "err", err)
		if err := f.roots.Trash(p.Root, p.Path); err != nil {
			return fmt.Errorf("recover package %s: %w", p.ID, err)
		}
	}
	return nil
}

// checkAllReady checks every ready package on an available root with
// checkReady, then asks for the download queue to be rebuilt.
func (f *Fetcher) checkAllReady(ctx context.Context) {
	damaged := false
	for _, p := range f.opt.Store.List() {
		if ctx.Err() != nil {
			return
		}
		if p.State == api.StateReady && p.Unavailable == "" && !f.checkReady(ctx, p.ID) {
			damaged = true
		}
	}
	if damaged {
		f.mu.Lock()
		f.requeue = true
		f.mu.Unlock()
		f.poke()
	}
}

// checkReady checks that the files of a ready package are in its folder
// with their sizes; when they are not, the folder is discarded and the
// package recorded as downloading, so the next reconcile fetches it again.
// It reports whether the package is whole (or not ready: nothing to
// check).
func (f *Fetcher) checkReady(ctx context.Context, id string) bool {
	p, ok := f.opt.Store.Get(id)
	if !ok || p.State != api.StateReady {
		return true
	}
	_, err := f.statFiles(p.Path, p.Files)
	if err == nil {
		return true
	}
	log := f.log.With("package", p.ID, "path", p.Path)
	log.Warn("ready package is damaged on disk; downloading it again", "err", err)
	if err := f.roots.Trash(p.Root, p.Path); err != nil {
		log.Error("discard damaged package", "err", err)
		return false
	}
	reason := fmt.Sprintf("files missing or damaged on disk: %v", err)
	if err := f.opt.Store.SetState(ctx, p.ID, api.StateDownloading, reason, f.opt.Clock.Now()); err != nil {
		log.Error("record damaged package", "err", err)
	}
	return false
}
