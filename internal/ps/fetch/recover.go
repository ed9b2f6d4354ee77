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
// downloaded (those of packages still downloading are kept to resume),
// records as ready a package folder found whole in place, and checks that
// every ready package's files are there with their sizes (a package whose
// files are not is discarded and will be downloaded again). Nothing in an
// unavailable root is touched. Running it twice changes nothing more.
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
			f.checkReady(ctx, p.ID)
			continue
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

// checkReady checks that the files of a ready package are in its folder
// with their sizes; when they are not, the folder is discarded and the
// package recorded as downloading, so the next reconcile fetches it again.
func (f *Fetcher) checkReady(ctx context.Context, id string) {
	p, ok := f.opt.Store.Get(id)
	if !ok || p.State != api.StateReady {
		return
	}
	_, err := f.statFiles(p.Path, p.Files)
	if err == nil {
		return
	}
	log := f.log.With("package", p.ID, "path", p.Path)
	log.Warn("ready package is damaged on disk; downloading it again", "err", err)
	if err := f.roots.Trash(p.Root, p.Path); err != nil {
		log.Error("discard damaged package", "err", err)
		return
	}
	reason := fmt.Sprintf("files missing or damaged on disk: %v", err)
	if err := f.opt.Store.SetState(ctx, p.ID, api.StateDownloading, reason, f.opt.Clock.Now()); err != nil {
		log.Error("record damaged package", "err", err)
	}
}
