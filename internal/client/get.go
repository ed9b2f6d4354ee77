package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/durable"
	"github.com/wharf-project/wharf/internal/wharf"
)

// ErrNotReady is wrapped by the error of Get and Download when no Package
// Server has the package ready.
var ErrNotReady = errors.New("not ready on any package server")

// Defaults of Options.
const (
	DefaultParallel     = 4
	DefaultRounds       = 3
	DefaultStallTimeout = 60 * time.Second
)

// stagePrefix starts the name of the staging folder in the destination.
const stagePrefix = ".wharf-get-"

// Options tune Get and Download. The zero value is ready to use.
type Options struct {
	// Parallel is how many files are downloaded at once; 0 means
	// DefaultParallel.
	Parallel int
	// HTTPClient fetches files from the Package Servers. nil means a client
	// that waits at most 30 s for response headers.
	HTTPClient *http.Client
	// Progress, when not nil, receives a progress bar. Set it only to a
	// terminal.
	Progress io.Writer
	// Log receives a warning for each failed attempt. When it is nil the
	// warnings are printed above the progress bar when there is one, and
	// discarded otherwise.
	Log *slog.Logger
	// Rounds is how many times a file goes through the list of codebases
	// before it fails; 0 means DefaultRounds.
	Rounds int
	// Backoff is the pause before round number round (1, 2, ...). nil means
	// 1 s, doubling, at most 30 s.
	Backoff func(round int) time.Duration
	// Sleep waits for d or until ctx is done. nil means a timer; tests
	// replace it so they do not wait.
	Sleep func(ctx context.Context, d time.Duration) error
	// StallTimeout abandons a response that delivered no byte for that
	// long; 0 means DefaultStallTimeout.
	StallTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	if o.HTTPClient == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ResponseHeaderTimeout = 30 * time.Second
		o.HTTPClient = &http.Client{Transport: t}
	}
	if o.Rounds <= 0 {
		o.Rounds = DefaultRounds
	}
	if o.Backoff == nil {
		o.Backoff = func(round int) time.Duration {
			return min(time.Second<<min(round-1, 5), 30*time.Second)
		}
	}
	if o.Sleep == nil {
		o.Sleep = func(ctx context.Context, d time.Duration) error {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = DefaultStallTimeout
	}
	return o
}

// Result summarises a download.
type Result struct {
	PackageID string `json:"package_id"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	Dest      string `json:"dest"`  // absolute path of the destination
	Files     int    `json:"files"` // files in the package
	Bytes     int64  `json:"bytes"` // bytes in the package
	// SkippedFiles were in the destination already, whole.
	SkippedFiles int `json:"skipped_files"`
	// DownloadedBytes were received from Package Servers, including any
	// that were thrown away (wrong content, a server that ignored a range).
	DownloadedBytes int64 `json:"downloaded_bytes"`
	// Codebases are the codebases that were offered, in order, each with
	// the bytes received from it.
	Codebases []CodebaseBytes `json:"codebases"`
}

// CodebaseBytes is how many bytes one codebase delivered.
type CodebaseBytes struct {
	Server string `json:"server"`
	URL    string `json:"url"`
	Bytes  int64  `json:"bytes"`
}

// Get resolves spec (PACKAGE[@VERSION], see Resolve) through the NS, asks it
// for the package's codebases and downloads every file into dest, which is
// created when missing.
func Get(ctx context.Context, cat Catalog, spec, dest string, opt Options) (*Result, error) {
	p, err := Resolve(ctx, cat, spec)
	if err != nil {
		return nil, err
	}
	cbs, err := cat.Codebases(ctx, p.ID)
	if err != nil {
		return nil, fmt.Errorf("get codebases of package %s (%s): %w", spec, p.ID, err)
	}
	return Download(ctx, p, cbs.Codebases, dest, opt)
}

// Download downloads every file of p from the codebases cbs into dest,
// which is created when missing. See the package documentation for how
// files are written, verified and resumed.
func Download(ctx context.Context, p api.Package, cbs []api.Codebase, dest string, opt Options) (*Result, error) {
	opt = opt.withDefaults()
	label := packageLabel(p)
	if err := validateManifest(p); err != nil {
		return nil, fmt.Errorf("get package %s: %w", label, err)
	}
	if len(cbs) == 0 {
		return nil, fmt.Errorf("package %s is %w", label, ErrNotReady)
	}
	d := &download{opt: opt, pkg: p, label: label}
	for _, cb := range cbs {
		c, err := newCodebase(cb)
		if err != nil {
			return nil, fmt.Errorf("get package %s: %w", label, err)
		}
		d.cbs = append(d.cbs, c)
	}

	abs, err := filepath.Abs(dest)
	if err != nil {
		return nil, fmt.Errorf("get package %s: destination %s: %w", label, dest, err)
	}
	if err := os.MkdirAll(abs, 0o777); err != nil {
		return nil, fmt.Errorf("get package %s: create destination: %w", label, err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("get package %s: open destination: %w", label, err)
	}
	defer root.Close()
	d.root = root
	d.stage = stagePrefix + randomHex(8)
	if err := root.Mkdir(d.stage, 0o700); err != nil {
		return nil, fmt.Errorf("get package %s: create staging folder in %s: %w", label, abs, err)
	}
	defer root.RemoveAll(d.stage)

	res := &Result{PackageID: p.ID, Name: p.Name, Version: p.Version, Dest: abs, Files: len(p.Files)}
	for _, f := range p.Files {
		res.Bytes += f.Size
	}
	d.bar = newProgress(opt.Progress, p.Name+" "+p.Version, res.Bytes)
	if d.opt.Log == nil {
		if w := d.bar.writer(); w != nil {
			d.opt.Log = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
		} else {
			d.opt.Log = slog.New(slog.DiscardHandler)
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opt.Parallel)
	var skipped atomic.Int64
	for i, f := range p.Files {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			skip, err := d.file(gctx, i, f)
			if skip {
				skipped.Add(1)
			}
			return err
		})
	}
	err = g.Wait()
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = d.syncDirs()
	}
	d.bar.finish(err == nil)

	res.SkippedFiles = int(skipped.Load())
	for _, c := range d.cbs {
		n := c.received.Load()
		res.Codebases = append(res.Codebases, CodebaseBytes{Server: c.Server, URL: c.URL, Bytes: n})
		res.DownloadedBytes += n
	}
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return res, fmt.Errorf("get package %s: %w", label, err)
	}
	return res, nil
}

func packageLabel(p api.Package) string {
	if p.Name == "" {
		return p.ID
	}
	return fmt.Sprintf("%s@%s (%s)", p.Name, p.Version, p.ID)
}

// emptySHA256 is the SHA-256 of no bytes.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// validateManifest checks every path, size and digest before anything
// touches the disk.
func validateManifest(p api.Package) error {
	paths := make([]string, len(p.Files))
	for i, f := range p.Files {
		paths[i] = f.Path
	}
	if err := wharf.ValidateFileSet(paths); err != nil {
		return fmt.Errorf("refusing the file list: %w", err)
	}
	for _, f := range p.Files {
		if _, err := wharf.ParseDigest(f.SHA256); err != nil {
			return fmt.Errorf("refusing the file list: file %q: %w", f.Path, err)
		}
		if f.Size < 0 || f.Size == 0 && f.SHA256 != emptySHA256 {
			return fmt.Errorf("refusing the file list: file %q: size %d does not fit sha256 %s", f.Path, f.Size, f.SHA256)
		}
	}
	return nil
}

// codebase is one offered codebase and what this run learnt of it.
type codebase struct {
	api.Codebase
	base     string       // URL with a trailing slash
	received atomic.Int64 // bytes received from it
	down     atomic.Bool  // its last attempt failed in transport or with a 5xx
}

func newCodebase(cb api.Codebase) (*codebase, error) {
	u, err := url.Parse(cb.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("codebase %s: invalid URL %q: want http(s)://host/path", cb.Server, cb.URL)
	}
	base := cb.URL
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return &codebase{Codebase: cb, base: base}, nil
}

// fileURL is the URL of the file at the relative path rel.
func (c *codebase) fileURL(rel string) string {
	elems := strings.Split(rel, "/")
	for i, e := range elems {
		elems[i] = url.PathEscape(e)
	}
	u := c.base + strings.Join(elems, "/")
	if c.Query != "" {
		u += "?" + c.Query
	}
	return u
}

// name is how errors and logs name the codebase.
func (c *codebase) name() string {
	if c.Server != "" {
		return c.Server
	}
	return c.URL
}

// download is one run of Download.
type download struct {
	opt   Options
	pkg   api.Package
	label string
	cbs   []*codebase
	root  *os.Root
	stage string // staging folder, relative to root
	bar   progress

	mu   sync.Mutex
	dirs map[string]bool // folders (relative to root, "." included) that received a file
}

// order returns the indexes of the codebases to try, in the NS's order but
// with those that failed in transport earlier in this run last.
func (d *download) order() []int {
	var up, down []int
	for i, c := range d.cbs {
		if c.down.Load() {
			down = append(down, i)
		} else {
			up = append(up, i)
		}
	}
	return append(up, down...)
}

// file puts one file into place. skipped reports that it was there already.
func (d *download) file(ctx context.Context, index int, f api.File) (skipped bool, err error) {
	name := filepath.FromSlash(f.Path)
	if d.have(name, f) {
		d.bar.add(f.Size)
		return true, nil
	}
	tmpName := filepath.Join(d.stage, fmt.Sprintf("%06d.part", index))
	tmp, err := d.root.OpenFile(tmpName, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return false, fmt.Errorf("get %s: create temporary file: %w", f.Path, err)
	}
	placed := false
	defer func() {
		if !placed {
			tmp.Close()
			d.root.Remove(tmpName)
		}
	}()
	p := newPartial(tmp, d.bar)
	if f.Size > 0 {
		if err := d.transfer(ctx, f, p); err != nil {
			p.reset() // take its bytes off the bar
			return false, err
		}
	}
	if err := tmp.Sync(); err != nil {
		return false, fmt.Errorf("get %s: sync temporary file: %w", f.Path, err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("get %s: close temporary file: %w", f.Path, err)
	}
	dir := path.Dir(f.Path)
	if dir != "." {
		if err := d.root.MkdirAll(filepath.FromSlash(dir), 0o777); err != nil {
			return false, fmt.Errorf("get %s: create folder %s: %w", f.Path, dir, err)
		}
	}
	if err := d.root.Rename(tmpName, name); err != nil {
		return false, fmt.Errorf("get %s: move into place: %w", f.Path, err)
	}
	placed = true
	d.mu.Lock()
	if d.dirs == nil {
		d.dirs = map[string]bool{}
	}
	for dir := f.Path; dir != "."; {
		dir = path.Dir(dir)
		d.dirs[dir] = true
	}
	d.mu.Unlock()
	return false, nil
}

// have reports whether name holds f already: a regular file of the right
// size and SHA-256.
func (d *download) have(name string, f api.File) bool {
	fi, err := d.root.Lstat(name)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != f.Size {
		return false
	}
	r, err := d.root.Open(name)
	if err != nil {
		return false
	}
	defer r.Close()
	sum, n, err := sha256Of(r)
	return err == nil && n == f.Size && sum == f.SHA256
}

// syncDirs makes every folder that received a file durable
// (durable.SyncOpenDir), so the renames are.
func (d *download) syncDirs() error {
	dirs := make([]string, 0, len(d.dirs))
	for dir := range d.dirs {
		dirs = append(dirs, dir)
	}
	slices.Sort(dirs)
	for _, dir := range dirs {
		f, err := d.root.Open(filepath.FromSlash(dir))
		if err != nil {
			return fmt.Errorf("sync folder %s: %w", dir, err)
		}
		err = durable.SyncOpenDir(f, dir)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
