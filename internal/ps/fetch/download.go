package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/ps/clock"
	"github.com/wharf-project/wharf/internal/ps/store"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/wharf"
)

// errUnassigned: the NS no longer lists the package for this PS.
var errUnassigned = errors.New("the NS does not list the package for this server")

// corruptError: the bytes do not match the manifest. Retrying the same
// source right away will not help.
type corruptError struct {
	msg     string
	resumed bool // the check covered bytes kept from an earlier attempt
}

func (e *corruptError) Error() string { return e.msg }

// diskError: writing or reading the local disk failed.
type diskError struct{ err error }

func (e *diskError) Error() string { return e.err.Error() }
func (e *diskError) Unwrap() error { return e.err }

// transient reports whether retrying the same request may help: network
// errors, truncated bodies and 5xx/408/429 answers.
func transient(err error) bool {
	var ce *corruptError
	var de *diskError
	var ae *apiclient.Error
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.As(err, &ce), errors.As(err, &de):
		return false
	case errors.As(err, &ae):
		return ae.Status >= 500 || ae.Status == 408 || ae.Status == 429
	}
	return true
}

// retry runs op until it succeeds, fails with an error that is not
// transient, or failed opt.FileAttempts times, waiting a backoff between
// attempts.
func (f *Fetcher) retry(ctx context.Context, log *slog.Logger, what string, op func() error) error {
	var err error
	for attempt := 0; ; attempt++ {
		err = op()
		if err == nil || !transient(err) || ctx.Err() != nil {
			return err
		}
		if attempt+1 >= f.opt.FileAttempts {
			return fmt.Errorf("%w (gave up after %d attempts)", err, attempt+1)
		}
		d := f.opt.RetryBackoff.Delay(attempt)
		log.Warn("transient error; retrying", "what", what, "err", err, "attempt", attempt+1, "delay", d)
		if err := clock.Sleep(ctx, f.opt.Clock, d); err != nil {
			return err
		}
	}
}

// download brings one package to ready. The package's row is created here on
// its first attempt.
func (f *Fetcher) download(ctx context.Context, sum api.PackageSummary, log *slog.Logger) error {
	p, ok := f.opt.Store.Get(sum.ID)
	var release func()
	if !ok {
		var err error
		p, release, err = f.begin(ctx, sum, log)
		if err != nil {
			return err
		}
	} else {
		if has, err := f.roots.HasMarker(p.Root); !has || err != nil {
			f.poke() // checkRoots marks the root unavailable
			return fmt.Errorf("store root %s lost its marker", p.Root)
		}
		release = f.roots.Acquire(p.Root)
		if l, ok := f.opt.Placer.(Ledger); ok {
			l.Hold(api.PackageSummary{ID: p.ID, Name: p.Name, Version: p.Version, Size: p.Size, FileCount: p.FileCount}, p.Root)
		}
		if err := f.opt.Store.SetState(ctx, p.ID, api.StateDownloading, "", f.opt.Clock.Now()); err != nil {
			release()
			return err
		}
		p.State, p.Reason = api.StateDownloading, ""
	}
	defer release()
	f.reportPackage(p)
	start := f.opt.Clock.Now()
	log.Info("downloading package", "name", p.Name, "version", p.Version, "files", p.FileCount, "bytes", p.Size, "path", p.Path)

	if _, err := f.fs.Lstat(p.Path); err == nil {
		// A folder in place that the DB does not call ready: left by a
		// crash after the rename, or by a failed MarkReady. Keep it if it
		// is whole.
		if mtimes, verr := f.verifyDir(p.Path, p.Files); verr == nil {
			return f.ready(ctx, p, mtimes, log, start)
		}
		if err := f.roots.Trash(p.Root, p.Path); err != nil {
			return &diskError{fmt.Errorf("download %s: %w", p.ID, err)}
		}
	}
	stage := f.roots.StageDownload(p.Root, p.ID)
	if err := stage.Open(); err != nil {
		return &diskError{fmt.Errorf("download %s: %w", p.ID, err)}
	}
	for _, file := range p.Files {
		if err := f.fetchFile(ctx, p.ID, stage, file, log); err != nil {
			return err
		}
	}
	if err := stage.SyncFolders(); err != nil {
		return &diskError{fmt.Errorf("download %s: %w", p.ID, err)}
	}
	if err := stage.Place(p.Path); err != nil {
		return &diskError{fmt.Errorf("download %s: move into place: %w", p.ID, err)}
	}
	mtimes, err := f.statFiles(p.Path, p.Files)
	if err != nil {
		return &diskError{fmt.Errorf("download %s: %w", p.ID, err)}
	}
	return f.ready(ctx, p, mtimes, log, start)
}

func (f *Fetcher) ready(ctx context.Context, p store.Package, mtimes map[string]time.Time, log *slog.Logger, start time.Time) error {
	if err := f.opt.Store.MarkReady(context.WithoutCancel(ctx), p.ID, mtimes, f.opt.Clock.Now()); err != nil {
		return err
	}
	p.State, p.Reason = api.StateReady, ""
	f.reportPackage(p)
	log.Info("package ready", "name", p.Name, "version", p.Version, "path", p.Path, "elapsed", f.opt.Clock.Now().Sub(start).Round(time.Millisecond))
	return nil
}

// begin fetches and checks the manifest, places the package and records it
// as downloading. Its root is pinned (storeroot.Roots.Acquire) until the
// caller calls release.
func (f *Fetcher) begin(ctx context.Context, sum api.PackageSummary, log *slog.Logger) (_ store.Package, release func(), err error) {
	var m api.Package
	err = f.retry(ctx, log, "manifest", func() error {
		var err error
		m, err = f.opt.NS.AgentPackage(ctx, f.server, sum.ID)
		return err
	})
	if errors.Is(err, wharf.ErrNotFound) {
		return store.Package{}, nil, errUnassigned
	}
	if err != nil {
		return store.Package{}, nil, fmt.Errorf("get manifest of package %s: %w", sum.ID, err)
	}
	files, err := checkManifest(sum.ID, m)
	if err != nil {
		return store.Package{}, nil, err
	}
	sum = m.PackageSummary
	sum.Size, sum.FileCount = 0, len(m.Files)
	for _, file := range m.Files {
		sum.Size += file.Size
	}
	root, err := f.opt.Placer.Place(ctx, sum)
	if err != nil {
		return store.Package{}, nil, fmt.Errorf("place package %s: %w", sum.ID, err)
	}
	pin := f.roots.Acquire(root)
	defer func() {
		if err != nil {
			pin()
		}
	}()
	if err := f.prepareRoot(root); err != nil {
		return store.Package{}, nil, err
	}
	f.mu.Lock()
	if j := f.running[sum.ID]; j != nil {
		j.root = root
	}
	f.mu.Unlock()
	p := store.Package{
		ID: m.ID, Name: m.Name, Version: m.Version, Signed: m.Signed, CustomLocation: m.CustomLocation,
		Root: root, Path: storeroot.PackageDir(root, m.ID), State: api.StateDownloading,
		FileCount: len(m.Files), UpdatedAt: f.opt.Clock.Now(),
	}
	for _, mf := range files {
		p.Size += mf.Size
		p.Files = append(p.Files, store.File{File: mf})
	}
	sort.Slice(p.Files, func(i, j int) bool { return p.Files[i].Path < p.Files[j].Path })
	if err := f.opt.Store.Put(ctx, p); err != nil {
		return store.Package{}, nil, err
	}
	return p, pin, nil
}

// prepareRoot makes sure root may take a new package: a root with its
// marker may; a root without one may only when no package of the index is
// there (then it is new, or was emptied, and gets a marker now). A root that
// holds packages but lost its marker is probably an unmounted volume.
func (f *Fetcher) prepareRoot(root string) error {
	f.rootMu.Lock()
	defer f.rootMu.Unlock()
	has, err := f.roots.HasMarker(root)
	if err != nil {
		return err
	}
	if has {
		return nil
	}
	if f.opt.Store.HasPackagesIn(root) {
		f.poke()
		return fmt.Errorf("store root %s has no %s marker (volume not mounted?); not downloading there", root, storeroot.MarkerName)
	}
	if err := f.roots.Prepare(root); err != nil {
		return &diskError{err}
	}
	f.log.Info("created store root", "root", root)
	return nil
}

// checkManifest refuses a manifest this PS could not store safely, and
// turns its files from their wire form into the domain's.
func checkManifest(id string, m api.Package) ([]wharf.File, error) {
	if m.ID != id {
		return nil, fmt.Errorf("manifest of package %s: the NS answered with package %q", id, m.ID)
	}
	paths := make([]string, len(m.Files))
	files := make([]wharf.File, len(m.Files))
	for i, file := range m.Files {
		paths[i] = file.Path
		d, err := wharf.ParseDigest(file.SHA256)
		if err != nil {
			return nil, fmt.Errorf("manifest of package %s: file %s: %w", id, file.Path, err)
		}
		if file.Size < 0 {
			return nil, fmt.Errorf("manifest of package %s: file %s: negative size", id, file.Path)
		}
		files[i] = wharf.File{Path: file.Path, Size: file.Size, SHA256: d}
	}
	if err := wharf.ValidateFileSet(paths); err != nil {
		return nil, fmt.Errorf("manifest of package %s: %w", id, err)
	}
	return files, nil
}

// fetchFile brings file to its complete, verified, fsynced content in the
// staging folder, resuming from what is there.
func (f *Fetcher) fetchFile(ctx context.Context, id string, stage *storeroot.Staging, file store.File, log *slog.Logger) error {
	restarted := false
	return f.retry(ctx, log.With("path", file.Path), "file", func() error {
		err := f.fetchOnce(ctx, stage, file)
		var ce *corruptError
		if errors.As(err, &ce) && ce.resumed && !restarted {
			// The bytes kept from before may be what is wrong (a crash can
			// leave garbage past the last fsync): start the file over once.
			restarted = true
			log.Warn("resumed file does not verify; downloading it from the start", "path", file.Path, "err", err)
			err = f.fetchOnce(ctx, stage, file)
		}
		if err != nil {
			return fmt.Errorf("download %s file %s: %w", id, file.Path, err)
		}
		return nil
	})
}

// fetchOnce makes one attempt at a file: hash what is on disk, then append
// the rest from the NS with a Range request. A file that turns out wrong is
// removed.
func (f *Fetcher) fetchOnce(ctx context.Context, stage *storeroot.Staging, file store.File) (err error) {
	fh, err := stage.Append(file.Path)
	if err != nil {
		return &diskError{err}
	}
	defer func() {
		cerr := fh.Close()
		var ce *corruptError
		if errors.As(err, &ce) {
			stage.Remove(file.Path)
		} else if err == nil && cerr != nil {
			err = &diskError{cerr}
		}
	}()
	h := sha256.New()
	have, err := io.Copy(h, fh)
	if err != nil {
		return &diskError{fmt.Errorf("hash partial file: %w", err)}
	}
	if have > file.Size {
		// More than the manifest holds: start the file over.
		fh.Close()
		if err := stage.Remove(file.Path); err != nil {
			return &diskError{err}
		}
		if fh, err = stage.Append(file.Path); err != nil {
			return &diskError{err}
		}
		h.Reset()
		have = 0
	}
	resumedFrom := have
	if have < file.Size {
		body, err := f.opt.NS.OpenBlob(ctx, file.SHA256, have)
		if err != nil {
			return err
		}
		defer body.Close()
		n, err := f.copyVerified(ctx, fh, h, body, file.Size-have)
		have += n
		if err != nil {
			return err
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != string(file.SHA256) {
		return &corruptError{msg: fmt.Sprintf("sha256 mismatch: got %s, want %s", got, file.SHA256), resumed: resumedFrom > 0}
	}
	if err := fh.Sync(); err != nil {
		return &diskError{fmt.Errorf("sync: %w", err)}
	}
	return nil
}

// copyVerified appends want bytes of body to fh (positioned at its end) and
// to h, at the configured bandwidth. More bytes than want is corruption;
// fewer is a transient error (the bytes written are kept for the next
// attempt).
func (f *Fetcher) copyVerified(ctx context.Context, fh io.Writer, h hash.Hash, body io.Reader, want int64) (int64, error) {
	buf := make([]byte, copyChunk)
	var n int64
	for {
		k, rerr := body.Read(buf[:f.thr.chunk()])
		if k > 0 {
			if n+int64(k) > want {
				return n, &corruptError{msg: fmt.Sprintf("the NS sent more than the %d bytes expected", want)}
			}
			if _, err := fh.Write(buf[:k]); err != nil {
				return n, &diskError{err}
			}
			h.Write(buf[:k])
			n += int64(k)
			if err := f.thr.wait(ctx, k); err != nil {
				return n, err
			}
		}
		if rerr == io.EOF {
			if n < want {
				return n, fmt.Errorf("body ended after %d of %d bytes: %w", n, want, io.ErrUnexpectedEOF)
			}
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// statFiles returns every file's modification time, checking it is a
// regular file of the manifest's size.
func (f *Fetcher) statFiles(dir string, files []store.File) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(files))
	for _, file := range files {
		fi, err := f.fs.Lstat(filepath.Join(dir, filepath.FromSlash(file.Path)))
		if err != nil {
			return nil, err
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%s is not a regular file", file.Path)
		}
		if fi.Size() != file.Size {
			return nil, fmt.Errorf("%s has %d bytes, want %d", file.Path, fi.Size(), file.Size)
		}
		out[file.Path] = fi.ModTime()
	}
	return out, nil
}

// verifyDir hashes every file of the package folder dir against the
// manifest.
func (f *Fetcher) verifyDir(dir string, files []store.File) (map[string]time.Time, error) {
	mtimes, err := f.statFiles(dir, files)
	if err != nil {
		return nil, err
	}
	for _, file := range files {
		fh, err := f.fs.Open(filepath.Join(dir, filepath.FromSlash(file.Path)))
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file.Path, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != string(file.SHA256) {
			return nil, fmt.Errorf("%s: sha256 mismatch: got %s, want %s", file.Path, got, file.SHA256)
		}
	}
	return mtimes, nil
}
