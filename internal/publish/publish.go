// Package publish turns a folder into a published package: it walks the
// folder, hashes the files in parallel, uploads the blobs the Notification
// Server lacks and posts the manifest. `wharf package add` is its user.
package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Progress hears how many bytes are uploaded. Calls come from several
// goroutines.
type Progress interface {
	SetTotal(bytes int64)
	Add(bytes int64)
}

// Options tune Publish.
type Options struct {
	Parallel int      // concurrent uploads; 0 means 4
	Progress Progress // may be nil
}

// Result tells what Publish did.
type Result struct {
	Package       api.PackageSummary `json:"package"`
	Created       bool               `json:"created"`        // false: an identical package existed
	Uploaded      int                `json:"uploaded"`       // blobs sent
	UploadedBytes int64              `json:"uploaded_bytes"` // bytes sent
	Skipped       int                `json:"skipped"`        // blobs the NS had already
}

type localFile struct {
	api.File
	abs string
}

// Publish publishes the regular files below dir with the name, version and
// options of m (m.Files is filled in from the folder).
func Publish(ctx context.Context, c *apiclient.Client, dir string, m api.PackageManifest, opts Options) (Result, error) {
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	files, err := scan(dir)
	if err != nil {
		return Result{}, err
	}
	if err := hashAll(ctx, files); err != nil {
		return Result{}, err
	}
	res, err := uploadMissing(ctx, c, files, opts)
	if err != nil {
		return Result{}, err
	}
	m.Files = make([]api.File, len(files))
	for i, f := range files {
		m.Files[i] = f.File
	}
	p, created, err := c.CreatePackage(ctx, m)
	if err != nil {
		return res, fmt.Errorf("publish %s %s: %w", m.Name, m.Version, err)
	}
	res.Package, res.Created = p.PackageSummary, created
	return res, nil
}

// scan lists the regular files below dir with their package-relative paths.
func scan(dir string) ([]*localFile, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("package folder: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("package folder %s: not a folder", dir)
	}
	var files []*localFile
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file (%s); a package holds regular files only", path, d.Type())
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if err := wharf.ValidateRelPath(rel); err != nil {
			return err
		}
		files = append(files, &localFile{File: api.File{Path: rel}, abs: path})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan package folder: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("package folder %s has no files", dir)
	}
	return files, nil
}

// hashAll computes size and SHA-256 of every file, one worker per CPU.
func hashAll(ctx context.Context, files []*localFile) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for _, f := range files {
		g.Go(func() error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return hashFile(f)
		})
	}
	return g.Wait()
}

func hashFile(f *localFile) error {
	r, err := os.Open(f.abs)
	if err != nil {
		return fmt.Errorf("hash %s: %w", f.abs, err)
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return fmt.Errorf("hash %s: %w", f.abs, err)
	}
	f.Size, f.SHA256 = n, hex.EncodeToString(h.Sum(nil))
	return nil
}

// uploadMissing sends each distinct blob the NS does not have.
func uploadMissing(ctx context.Context, c *apiclient.Client, files []*localFile, opts Options) (Result, error) {
	byDigest := map[string]*localFile{}
	var distinct []*localFile
	for _, f := range files {
		if _, ok := byDigest[f.SHA256]; !ok {
			byDigest[f.SHA256] = f
			distinct = append(distinct, f)
		}
	}
	var (
		mu      sync.Mutex
		res     Result
		missing []*localFile
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Parallel * 4)
	for _, f := range distinct {
		g.Go(func() error {
			ok, err := c.HasBlob(gctx, wharf.Digest(f.SHA256))
			if err != nil {
				return fmt.Errorf("check blob of %s: %w", f.Path, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if ok {
				res.Skipped++
			} else {
				missing = append(missing, f)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return res, err
	}
	var total int64
	for _, f := range missing {
		total += f.Size
	}
	if opts.Progress != nil {
		opts.Progress.SetTotal(total)
	}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(opts.Parallel)
	for _, f := range missing {
		g.Go(func() error {
			if err := upload(gctx, c, f, opts.Progress); err != nil {
				return err
			}
			mu.Lock()
			res.Uploaded++
			res.UploadedBytes += f.Size
			mu.Unlock()
			return nil
		})
	}
	return res, g.Wait()
}

func upload(ctx context.Context, c *apiclient.Client, f *localFile, p Progress) error {
	r, err := os.Open(f.abs)
	if err != nil {
		return fmt.Errorf("upload %s: %w", f.abs, err)
	}
	defer r.Close()
	var body io.Reader = r
	if p != nil {
		body = &countingReader{r: r, p: p}
	}
	err = c.PutBlob(ctx, wharf.Digest(f.SHA256), body, f.Size)
	if errors.Is(err, wharf.ErrInvalid) {
		return fmt.Errorf("upload %s: %w (did the file change while publishing?)", f.abs, err)
	}
	if err != nil {
		return fmt.Errorf("upload %s: %w", f.abs, err)
	}
	return nil
}

type countingReader struct {
	r io.Reader
	p Progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.Add(int64(n))
	return n, err
}
