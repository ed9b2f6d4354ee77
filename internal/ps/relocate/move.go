package relocate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/wharf"
)

var (
	errExist    = fs.ErrExist
	errNotExist = fs.ErrNotExist
)

// fatalError marks an error that must stop the attempt: the journal or the
// index failed, so the engine can no longer record what it does.
type fatalError struct{ err error }

func (f *fatalError) Error() string { return f.err.Error() }
func (f *fatalError) Unwrap() error { return f.err }

func fatal(format string, args ...any) error {
	return &fatalError{fmt.Errorf(format, args...)}
}

// errDamaged marks a source file whose bytes do not match the manifest.
var errDamaged = errors.New("does not match its manifest")

// movePackage moves package p to rs.target (see "Moving a package" in the
// package doc) and returns what became of it. The error is fatal only.
func (e *Engine) movePackage(ctx context.Context, rs *runState, p Package) (PackageResult, error) {
	src := filepath.Clean(p.Folder)
	id := p.ID
	res := PackageResult{Package: id, From: src, Path: src}
	// Rotated: put on another root by rotation (not left behind a link).
	res.Rotated = p.Link == "" && rs.from != "" && !samePath(filepath.Dir(src), rs.from)
	if ctx.Err() != nil {
		res.Outcome, res.Cause, res.Reason = Pending, CauseCanceled, "the attempt was canceled"
		return res, nil
	}
	// From here the protocol runs to its end; only copying looks at ctx.
	nc := context.WithoutCancel(ctx)
	ent := Entry{
		Key: string(id), Kind: KindMove, Package: id, Target: rs.target,
		Source: src, SourceLink: p.Link,
		Dest:  storeroot.PackageDir(rs.target, string(id)),
		Temp:  storeroot.RelocateTemp(rs.target, string(id)),
		Trash: storeroot.TrashPath(filepath.Dir(src), string(id)),
	}
	log := e.log.With("package", id, "from", src, "to", ent.Dest)

	if samePath(src, ent.Dest) {
		// Already in place but still behind a link at another root
		// (an earlier target): drop the link.
		ent.Step = StepStaged
		if err := e.begin(nc, ent); err != nil {
			return e.notBegun(res, err)
		}
		res.Method = "rename"
		return e.finishStaged(nc, ent, res)
	}
	if fi, err := e.fs.Lstat(src); err != nil || !fi.IsDir() || fsys.IsLink(fi) {
		return failed(res, CauseOther, "package folder %s is missing or not a folder: %v", src, err), nil
	}
	relink := false
	switch fi, err := e.fs.Lstat(ent.Dest); {
	case err == nil && fsys.IsLink(fi) && p.Link != "" && samePath(p.Link, ent.Dest):
		relink = true // replace the package's own link by its folder
	case err == nil:
		return failed(res, CauseOther, "%s already exists and is not this package's link", ent.Dest), nil
	case !errors.Is(err, errNotExist):
		return failed(res, classify(err), "%v", err), nil
	}

	to := ent.Dest
	ent.Step = StepRename
	if relink {
		to, ent.Step = ent.Temp, StepStageRename
	}
	if err := e.begin(nc, ent); err != nil {
		return e.notBegun(res, err)
	}
	err := e.fs.Rename(src, to)
	switch {
	case err == nil && !relink:
		res.Method = "rename"
		log.Debug("renamed")
		return e.finishRename(nc, ent, res)
	case err == nil:
		res.Method = "rename"
		if err := e.syncDirs(ent.Temp, src); err != nil {
			return failed(res, classify(err), "package renamed to %s but not made durable: %v (recovery will finish it)", ent.Temp, err), nil
		}
		if err := e.advance(nc, ent.Key, StepStaged); err != nil {
			return res, err
		}
		ent.Step = StepStaged
		return e.finishStaged(nc, ent, res)
	case errors.Is(err, fsys.ErrCrossDevice):
		if err := e.advance(nc, ent.Key, StepCopy); err != nil {
			return res, err
		}
		ent.Step = StepCopy
		return e.copyPackage(ctx, nc, rs, ent, p, res)
	}
	log.Info("rename failed; linking", "err", err)
	if err := e.close(nc, ent.Key); err != nil {
		return res, err
	}
	return e.cannotMove(nc, rs, p, ent, res, fmt.Errorf("move package %s to %s: %w", id, ent.Dest, err))
}

// cannotMove handles a package that cannot move: a package already behind
// its link at the target stays so; any other gets a link (SPEC §6.2).
func (e *Engine) cannotMove(nc context.Context, rs *runState, p Package, ent Entry, res PackageResult, cause error) (PackageResult, error) {
	if p.Link != "" && samePath(p.Link, ent.Dest) {
		res.Outcome, res.Method, res.Path = Linked, "link", ent.Dest
		res.Cause, res.Reason = classify(cause), cause.Error()
		return res, nil
	}
	return e.linkPackage(nc, rs, p, res, cause)
}

// notBegun turns a failed Begin into a result or a fatal error.
func (e *Engine) notBegun(res PackageResult, err error) (PackageResult, error) {
	if errors.Is(err, wharf.ErrExists) {
		return failed(res, CauseOther, "an earlier move of the package is not finished: %v", err), nil
	}
	return res, err
}

func failed(res PackageResult, cause, format string, args ...any) PackageResult {
	res.Outcome, res.Cause, res.Reason = Failed, cause, fmt.Sprintf(format, args...)
	return res
}

// finishRename completes a move whose rename to Dest happened: make it
// durable, switch, drop the old link.
func (e *Engine) finishRename(nc context.Context, ent Entry, res PackageResult) (PackageResult, error) {
	serr := e.syncDirs(ent.Dest, ent.Source)
	if err := e.index.SetLocation(nc, ent.Package, Location{Folder: ent.Dest}); err != nil {
		if errors.Is(err, wharf.ErrNotFound) {
			return e.gone(nc, ent, res)
		}
		return res, fatal("switch package %s to %s: %w", ent.Package, ent.Dest, err)
	}
	res.Outcome, res.Path = Moved, ent.Dest
	if serr != nil {
		// Serving follows the index now; the entry stays open and the
		// next Recover or Run syncs again and closes it.
		res.Reason = fmt.Sprintf("moved, not yet confirmed durable: %v (recovery will finish it)", serr)
		return res, nil
	}
	left, err := e.dropOldLink(nc, ent)
	if err != nil {
		return res, err
	}
	res.Leftovers = left
	return res, e.close(nc, ent.Key)
}

// copyPackage copies the package to Temp, verified, and finishes the move;
// on failure it discards the copy and links the package instead.
func (e *Engine) copyPackage(ctx, nc context.Context, rs *runState, ent Entry, p Package, res PackageResult) (PackageResult, error) {
	res.Method = "copy"
	log := e.log.With("package", ent.Package, "from", ent.Source, "to", ent.Dest)
	undo := func(cause error) (PackageResult, error) {
		if err := e.discardCopy(nc, ent); err != nil {
			return res, err
		}
		if ctx.Err() != nil && errors.Is(cause, ctx.Err()) {
			res.Outcome, res.Cause, res.Reason = Pending, CauseCanceled, "the attempt was canceled during the copy"
			return res, nil
		}
		log.Info("package cannot be moved; linking", "err", cause)
		return e.cannotMove(nc, rs, p, ent, res, cause)
	}
	// All or nothing: a source that cannot be removed is not moved.
	if err := e.fs.CanRemove(ent.Source); err != nil {
		return undo(fmt.Errorf("copy package %s to %s: %w", ent.Package, ent.Dest, err))
	}
	e.copySlots <- struct{}{} // Parallel copies at most; renames do not wait here
	n, err := e.copyTree(ctx, nc, ent)
	<-e.copySlots
	res.Bytes = n
	if err != nil {
		var fe *fatalError
		if errors.As(err, &fe) {
			return res, err
		}
		if errors.Is(err, wharf.ErrNotFound) {
			if err := e.discardCopy(nc, ent); err != nil {
				return res, err
			}
			return failed(res, CauseGone, "package left the index during the move"), nil
		}
		return undo(err)
	}
	if err := e.fs.CanRemove(ent.Source); err != nil {
		return undo(fmt.Errorf("copy package %s to %s: %w", ent.Package, ent.Dest, err))
	}
	if err := e.advance(nc, ent.Key, StepStaged); err != nil {
		return res, err
	}
	ent.Step = StepStaged
	return e.finishStaged(nc, ent, res)
}

// discardCopy removes a partial or abandoned copy and closes the entry; a
// copy that cannot be removed becomes a leftover.
func (e *Engine) discardCopy(nc context.Context, ent Entry) error {
	err := e.fs.RemoveAll(ent.Temp)
	if err == nil {
		err = e.syncIfThere(filepath.Dir(ent.Temp))
	}
	if err != nil {
		e.log.Warn("cannot remove a partial copy; journaled as a leftover", "path", ent.Temp, "err", err)
		if err := e.addLeftover(nc, ent.Package, ent.Temp, ""); err != nil {
			return err
		}
	}
	return e.close(nc, ent.Key)
}

// copyTree copies the files of the package's manifest from Source into
// Temp (a storeroot.Staging of the target), hashing while copying and
// comparing with the manifest, and makes every file and folder of Temp
// durable. It returns the bytes copied.
//
// Where the FS can sync a whole volume (fsys.VolumeSyncer: syncfs on
// Linux), the copy ends with that one call instead of an fsync of every
// file and folder: the group commit that keeps small-file stores fast.
func (e *Engine) copyTree(ctx, nc context.Context, ent Entry) (int64, error) {
	stage := e.roots.StageCopy(ent.Target, string(ent.Package))
	if stage.Dir() != filepath.Clean(ent.Temp) {
		return 0, fmt.Errorf("copy package %s: staging folder %s is not the journaled %s", ent.Package, stage.Dir(), ent.Temp)
	}
	if err := e.fs.RemoveAll(ent.Temp); err != nil { // a partial copy of an earlier attempt
		return 0, err
	}
	if err := stage.Open(); err != nil {
		return 0, err
	}
	vs, groupSync := e.fs.(fsys.VolumeSyncer)
	groupSync = groupSync && !e.noVolumeSync.Load()
	var copied []string // files not synced yet, when groupSync
	var total int64
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	after := ""
	for {
		files, err := e.index.Files(nc, ent.Package, after, e.opt.FilePageSize)
		switch {
		case errors.Is(err, wharf.ErrNotFound):
			return total, err
		case err != nil:
			return total, fatal("list files of package %s: %w", ent.Package, err)
		case len(files) == 0:
			if groupSync {
				// Each copy its own syncfs, concurrently: the kernel
				// shares the writeback among them, while rounds of the
				// group syncer would make a copy that ends during a long
				// sync wait for a whole further one (measured: 2 GiB of
				// mixed files 6.8 s grouped, 4.6 s not; small files no
				// slower).
				err := vs.SyncVolume(ent.Temp)
				if !errors.Is(err, errors.ErrUnsupported) {
					return total, err
				}
				e.noVolumeSync.Store(true)
				for _, p := range copied {
					if err := e.syncFile(p); err != nil {
						return total, err
					}
				}
			}
			return total, stage.SyncFolders()
		}
		for _, f := range files {
			if err := ctx.Err(); err != nil {
				return total, err
			}
			out, err := stage.Create(f.Path)
			if err != nil {
				return total, fmt.Errorf("copy package %s to %s: %w", ent.Package, ent.Dest, err)
			}
			src := filepath.Join(ent.Source, filepath.FromSlash(f.Path))
			n, err := e.copyFile(ctx, src, out, f, buf, !groupSync)
			total += n
			if err != nil {
				return total, fmt.Errorf("copy package %s to %s: %w", ent.Package, ent.Dest, err)
			}
			if groupSync {
				copied = append(copied, stage.Path(f.Path))
			}
		}
		after = files[len(files)-1].Path
	}
}

// syncFile makes a file written and closed earlier durable.
func (e *Engine) syncFile(name string) error {
	f, err := e.fs.Open(name)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

const copyBuffer = 1 << 20

// copyBufs recycles the copy buffers of packages copied one after the
// other (a store of 1,000 packages would otherwise allocate 1 GiB of them).
var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBuffer); return &b }}

// copyFile copies src to out, a new file it closes, checking size and
// SHA-256 against f, and syncs out when sync is set.
func (e *Engine) copyFile(ctx context.Context, src string, out fsys.File, f wharf.File, buf []byte, sync bool) (n int64, err error) {
	in, err := e.fs.Open(src)
	if err != nil {
		out.Close()
		return 0, err
	}
	defer in.Close()
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	h := sha256.New()
	for {
		k, rerr := in.Read(buf)
		if k > 0 {
			if err := e.throttle(ctx, k); err != nil {
				return n, err
			}
			h.Write(buf[:k])
			w, werr := out.Write(buf[:k])
			n += int64(w)
			e.progressBytes(int64(w))
			if werr != nil {
				return n, werr
			}
			if w < k {
				return n, fmt.Errorf("copy %s: short write", src)
			}
			if n > f.Size {
				return n, fmt.Errorf("%s is longer than the %d bytes of its manifest: %w", src, f.Size, errDamaged)
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				break
			}
			return n, rerr
		}
	}
	if n != f.Size {
		return n, fmt.Errorf("%s has %d bytes, its manifest %d: %w", src, n, f.Size, errDamaged)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != string(f.SHA256) {
		return n, fmt.Errorf("%s has sha256 %s, its manifest %s: %w", src, sum, f.SHA256, errDamaged)
	}
	if sync {
		if err := out.Sync(); err != nil {
			return n, err
		}
	}
	return n, nil
}

// throttle waits for the rate limiter, if any, to allow n bytes.
func (e *Engine) throttle(ctx context.Context, n int) error {
	l := e.opt.Limiter
	if l == nil {
		return nil
	}
	burst := l.Burst()
	if burst <= 0 {
		burst = n
	}
	for n > 0 {
		k := min(n, burst)
		if err := l.WaitN(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// finishStaged completes a move from StepStaged: place Temp at Dest, switch,
// remove the old place. The move only goes forward from here; a step that
// fails leaves the entry open for Recover to finish.
func (e *Engine) finishStaged(nc context.Context, ent Entry, res PackageResult) (PackageResult, error) {
	placed, err := e.place(ent)
	if err != nil {
		return failed(res, classify(err), "placing the package at %s: %v (recovery will finish it)", ent.Dest, err), nil
	}
	if !placed {
		// Neither Temp nor Dest holds it: the move never got as far
		// (a rename that a crash undid); it is still at Source.
		return e.rollBack(nc, ent, res)
	}
	if err := e.index.SetLocation(nc, ent.Package, Location{Folder: ent.Dest}); err != nil {
		if errors.Is(err, wharf.ErrNotFound) {
			return e.gone(nc, ent, res)
		}
		return res, fatal("switch package %s to %s: %w", ent.Package, ent.Dest, err)
	}
	res.Outcome, res.Path = Moved, ent.Dest
	left, err := e.removeOld(nc, ent)
	if err != nil {
		return res, err
	}
	res.Leftovers = left
	return res, e.close(nc, ent.Key)
}

// place puts the staged package at Dest: a rename of Temp, or an exchange
// with the package's link at Dest (where the OS cannot exchange, the link
// is removed and Temp renamed). It reports false when the package is
// neither at Temp nor at Dest.
func (e *Engine) place(ent Entry) (bool, error) {
	dfi, derr := e.fs.Lstat(ent.Dest)
	tfi, terr := e.fs.Lstat(ent.Temp)
	destDir := derr == nil && dfi.IsDir() && !fsys.IsLink(dfi)
	tempDir := terr == nil && tfi.IsDir() && !fsys.IsLink(tfi)
	switch {
	case destDir:
		// Placed already (Temp is gone, or holds the old link).
	case !tempDir:
		if derr != nil && !errors.Is(derr, errNotExist) {
			return false, derr
		}
		return false, nil
	case errors.Is(derr, errNotExist):
		if err := e.fs.Rename(ent.Temp, ent.Dest); err != nil {
			return false, err
		}
	case derr == nil && fsys.IsLink(dfi):
		err := e.fs.Exchange(ent.Temp, ent.Dest)
		if errors.Is(err, errors.ErrUnsupported) {
			if err = e.fs.Remove(ent.Dest); err == nil {
				err = e.fs.Rename(ent.Temp, ent.Dest)
			}
		}
		if err != nil {
			return false, err
		}
	default:
		return false, fmt.Errorf("%s: %v", ent.Dest, derr)
	}
	if err := e.syncDir(filepath.Dir(ent.Dest)); err != nil {
		return true, err
	}
	return true, e.syncIfThere(filepath.Dir(ent.Temp))
}

// syncIfThere syncs folder dir unless it is gone (a temporary folder
// removed once empty holds no entry left to make durable).
func (e *Engine) syncIfThere(dir string) error {
	if err := e.syncDir(dir); err != nil && !errors.Is(err, errNotExist) {
		return err
	}
	return nil
}

// rollBack closes a move that did not happen, restoring the index to where
// the package was.
func (e *Engine) rollBack(nc context.Context, ent Entry, res PackageResult) (PackageResult, error) {
	if fi, err := e.fs.Lstat(ent.Source); err != nil || !fi.IsDir() {
		return failed(res, CauseOther, "package is neither at %s nor at %s nor at %s; the journal entry stays open",
			ent.Source, ent.Temp, ent.Dest), nil
	}
	if err := e.restore(nc, ent); err != nil {
		return res, err
	}
	res.Outcome, res.Cause, res.Reason = Failed, CauseOther, "the move did not happen; the package stays where it was"
	return res, e.close(nc, ent.Key)
}

// restore sets the index back to the entry's Source and SourceLink.
func (e *Engine) restore(nc context.Context, ent Entry) error {
	err := e.index.SetLocation(nc, ent.Package, Location{Folder: ent.Source, Link: ent.SourceLink})
	if err != nil && !errors.Is(err, wharf.ErrNotFound) {
		return fatal("restore package %s to %s: %w", ent.Package, ent.Source, err)
	}
	return nil
}

// removeOld removes what is left of the package's old place after the
// switch: its old link (at Temp after an exchange, or at an earlier
// target), and its old folder, renamed into the trash first. What cannot be
// removed is journaled as leftovers, removed by a later Recover or Run; it
// returns their paths.
func (e *Engine) removeOld(nc context.Context, ent Entry) ([]string, error) {
	var left []string
	keep := func(path, trash string, err error) error {
		e.log.Warn("cannot remove the old place of a moved package; journaled as a leftover",
			"package", ent.Package, "path", path, "err", err)
		left = append(left, path)
		return e.addLeftover(nc, ent.Package, path, trash)
	}
	if fi, err := e.fs.Lstat(ent.Temp); err == nil && fsys.IsLink(fi) {
		if err := e.removeLink(ent.Temp); err != nil {
			if err := keep(ent.Temp, "", err); err != nil {
				return left, err
			}
		}
	}
	more, err := e.dropOldLink(nc, ent)
	left = append(left, more...)
	if err != nil {
		return left, err
	}
	if samePath(ent.Source, ent.Dest) {
		return left, nil
	}
	switch _, err := e.fs.Lstat(ent.Source); {
	case err == nil:
		if err := e.trash(ent.Source, ent.Trash); err != nil {
			return left, keep(ent.Source, ent.Trash, err)
		}
	case !errors.Is(err, errNotExist):
		return left, keep(ent.Source, ent.Trash, err)
	}
	if err := e.removeTrash(ent.Trash); err != nil {
		return left, keep(ent.Trash, "", err)
	}
	return left, nil
}

// dropOldLink removes the link that pointed to Source at another root,
// if it still does.
func (e *Engine) dropOldLink(nc context.Context, ent Entry) ([]string, error) {
	l := ent.SourceLink
	if l == "" || samePath(l, ent.Dest) {
		return nil, nil
	}
	t, err := e.fs.Readlink(l)
	if err != nil || !samePath(t, ent.Source) {
		return nil, nil // gone, or no longer ours to remove
	}
	if err := e.removeLink(l); err != nil {
		e.log.Warn("cannot remove an old link; journaled as a leftover", "package", ent.Package, "path", l, "err", err)
		return []string{l}, e.addLeftover(nc, ent.Package, l, "")
	}
	return nil, nil
}

func (e *Engine) removeLink(path string) error {
	if err := e.fs.Remove(path); err != nil && !errors.Is(err, errNotExist) {
		return err
	}
	return e.syncIfThere(filepath.Dir(path))
}

// trash renames folder path to trash (replacing an older trash entry of the
// same name, which is garbage) and makes it durable.
func (e *Engine) trash(path, trash string) error {
	if err := e.ensureDir(filepath.Dir(trash)); err != nil {
		return err
	}
	err := e.fs.Rename(path, trash)
	if errors.Is(err, errExist) {
		if err := e.fs.RemoveAll(trash); err != nil {
			return err
		}
		err = e.fs.Rename(path, trash)
	}
	if err != nil {
		return err
	}
	return e.syncDirs(path, trash)
}

// removeTrash removes a trash entry, if any, durably.
func (e *Engine) removeTrash(trash string) error {
	if _, err := e.fs.Lstat(trash); errors.Is(err, errNotExist) {
		return nil
	}
	if err := e.fs.RemoveAll(trash); err != nil {
		return err
	}
	return e.syncDir(filepath.Dir(trash))
}

// syncDirs syncs the folders holding a and b (once if the same).
func (e *Engine) syncDirs(a, b string) error {
	da, db := filepath.Dir(a), filepath.Dir(b)
	if err := e.syncDir(da); err != nil {
		return err
	}
	if db != da {
		return e.syncDir(db)
	}
	return nil
}

// gone handles a package that left the index while it moved (unassigned):
// its new copy and its old place are both garbage.
func (e *Engine) gone(nc context.Context, ent Entry, res PackageResult) (PackageResult, error) {
	e.log.Info("package left the index during its move; removing it", "package", ent.Package)
	if err := e.addLeftover(nc, ent.Package, ent.Dest, storeroot.TrashPath(ent.Target, string(ent.Package))); err != nil {
		return res, err
	}
	if _, err := e.removeOld(nc, ent); err != nil {
		return res, err
	}
	if err := e.close(nc, ent.Key); err != nil {
		return res, err
	}
	res = failed(res, CauseGone, "package left the index during the move")
	return res, e.removeLeftover(nc, leftoverEntry(ent.Package, ent.Dest, storeroot.TrashPath(ent.Target, string(ent.Package))))
}

// linkPackage makes a link at the target to a package that stays where it
// is (SPEC §6.2, link fallback).
func (e *Engine) linkPackage(nc context.Context, rs *runState, p Package, res PackageResult, cause error) (PackageResult, error) {
	src := filepath.Clean(p.Folder)
	dest := filepath.Join(rs.target, string(p.ID))
	res.Cause, res.Reason = classify(cause), cause.Error()
	res.Method = "link"
	if fi, err := e.fs.Lstat(dest); err == nil {
		if t, lerr := e.fs.Readlink(dest); lerr == nil && fsys.IsLink(fi) && samePath(t, src) {
			res.Outcome, res.Path = Linked, dest
			return res, nil
		}
		res.Outcome = Failed
		res.Reason += fmt.Sprintf("; cannot link it: %s exists", dest)
		return res, nil
	}
	ent := Entry{Key: string(p.ID), Kind: KindLink, Package: p.ID, Step: StepLink, Target: rs.target,
		Source: src, SourceLink: p.Link, Dest: dest}
	if err := e.begin(nc, ent); err != nil {
		if errors.Is(err, wharf.ErrExists) {
			res.Outcome = Failed
			res.Reason += fmt.Sprintf("; cannot link it: %v", err)
			return res, nil
		}
		return res, err
	}
	if err := e.fs.Symlink(src, dest); err != nil {
		if err := e.close(nc, ent.Key); err != nil {
			return res, err
		}
		res.Outcome = Failed
		res.Reason += fmt.Sprintf("; cannot link it: %v", err)
		return res, nil
	}
	return e.finishLink(nc, ent, res)
}

// finishLink completes a link entry whose link exists: durable, switch,
// drop the package's link at an earlier target.
func (e *Engine) finishLink(nc context.Context, ent Entry, res PackageResult) (PackageResult, error) {
	if err := e.syncDir(filepath.Dir(ent.Dest)); err != nil {
		res.Outcome = Failed
		res.Reason += fmt.Sprintf("; link %s not made durable: %v (recovery will finish it)", ent.Dest, err)
		return res, nil
	}
	if err := e.index.SetLocation(nc, ent.Package, Location{Folder: ent.Source, Link: ent.Dest}); err != nil {
		if errors.Is(err, wharf.ErrNotFound) {
			if err := e.addLeftover(nc, ent.Package, ent.Dest, ""); err != nil {
				return res, err
			}
			if err := e.close(nc, ent.Key); err != nil {
				return res, err
			}
			return failed(res, CauseGone, "package left the index during the move"),
				e.removeLeftover(nc, leftoverEntry(ent.Package, ent.Dest, ""))
		}
		return res, fatal("link package %s at %s: %w", ent.Package, ent.Dest, err)
	}
	res.Outcome, res.Path = Linked, ent.Dest
	left, err := e.dropOldLink(nc, ent)
	if err != nil {
		return res, err
	}
	res.Leftovers = left
	return res, e.close(nc, ent.Key)
}

// leftoverEntry is the journal entry of a leftover.
func leftoverEntry(id wharf.PackageID, path, trash string) Entry {
	return Entry{Key: "leftover:" + path, Kind: KindLeftover, Package: id, Step: StepRemove, Path: path, Trash: trash}
}

// addLeftover journals path (to be renamed to trash first, when trash is
// set) for removal by a later Recover or Run.
func (e *Engine) addLeftover(nc context.Context, id wharf.PackageID, path, trash string) error {
	err := e.journal.Begin(nc, leftoverEntry(id, path, trash))
	if err != nil && !errors.Is(err, wharf.ErrExists) {
		return fatal("journal leftover %s: %w", path, err)
	}
	return nil
}

// removeLeftover removes a leftover and closes its entry; one that still
// cannot be removed stays journaled (no error: it is retried later).
func (e *Engine) removeLeftover(nc context.Context, ent Entry) error {
	err := func() error {
		fi, err := e.fs.Lstat(ent.Path)
		switch {
		case errors.Is(err, errNotExist):
		case err != nil:
			return err
		case fsys.IsLink(fi) || !fi.IsDir():
			if err := e.removeLink(ent.Path); err != nil {
				return err
			}
		case ent.Trash != "":
			if err := e.trash(ent.Path, ent.Trash); err != nil {
				return err
			}
		default:
			if err := e.fs.RemoveAll(ent.Path); err != nil {
				return err
			}
			if err := e.syncDir(filepath.Dir(ent.Path)); err != nil {
				return err
			}
		}
		if ent.Trash != "" {
			return e.removeTrash(ent.Trash)
		}
		return nil
	}()
	if err != nil {
		e.log.Warn("leftover not removed yet", "package", ent.Package, "path", ent.Path, "err", err)
		return nil
	}
	return e.close(nc, ent.Key)
}

// prepareTarget makes the target a store root of this server (created
// durably, marked) and makes its temporary folder.
func (e *Engine) prepareTarget(rs *runState) error {
	if err := e.roots.Prepare(rs.target); err != nil {
		return err
	}
	return e.ensureDir(rs.temp)
}

// tidy removes the target's temporary folder when it is empty.
func (e *Engine) tidy(rs *runState) { e.tidyTemp(rs.temp) }

func (e *Engine) tidyTemp(dir string) {
	es, err := e.fs.ReadDir(dir)
	if err != nil || len(es) > 0 {
		return
	}
	if err := e.fs.Remove(dir); err != nil {
		e.log.Debug("temporary folder not removed", "path", dir, "err", err)
		return
	}
	if err := e.syncDir(filepath.Dir(dir)); err != nil {
		e.log.Debug("sync after removing the temporary folder", "path", dir, "err", err)
	}
}

// journal calls, with fatal errors.

func (e *Engine) begin(nc context.Context, ent Entry) error {
	if err := e.journal.Begin(nc, ent); err != nil {
		if errors.Is(err, wharf.ErrExists) {
			return err
		}
		return fatal("journal %s of package %s: %w", ent.Kind, ent.Package, err)
	}
	return nil
}

func (e *Engine) advance(nc context.Context, key string, step Step) error {
	if err := e.journal.Advance(nc, key, step); err != nil {
		return fatal("journal step %s of %s: %w", step, key, err)
	}
	return nil
}

func (e *Engine) close(nc context.Context, key string) error {
	if err := e.journal.Close(nc, key); err != nil {
		return fatal("close journal entry %s: %w", key, err)
	}
	return nil
}

// classify names the cause of an error for PackageResult.Cause.
func classify(err error) string {
	switch {
	case errors.Is(err, fsys.ErrNotRemovable):
		return CauseNotRemovable
	case errors.Is(err, errDamaged):
		return CauseDamaged
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, wharf.ErrNoSpace):
		return CauseNoSpace
	case errors.Is(err, syscall.EBUSY), errors.Is(err, syscall.ETXTBSY), isSharingViolation(err):
		return CauseBusy
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return CausePermission
	case errors.Is(err, syscall.EIO):
		return CauseIO
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return CauseCanceled
	}
	return CauseOther
}
