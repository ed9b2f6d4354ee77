// Package relocatetest holds in-memory implementations of the state the
// relocation engine needs — relocate.Index and relocate.Journal — and
// helpers to write and verify packages, for tests. The fakes are "durable on
// return": what a call did survives a memfs crash, as a committed SQLite
// transaction would. A Fail hook makes calls fail (a crashed process makes
// no more commits).
package relocatetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"sync"

	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Index is an in-memory relocate.Index. The zero value is not usable; use
// NewIndex.
type Index struct {
	// Fail, when set, is called first by every method with its name
	// ("packages", "files", "set-location"); a non-nil error is returned
	// and nothing changes.
	Fail func(op string) error

	mu     sync.Mutex
	pkgs   map[wharf.PackageID]*entry
	sorted []wharf.PackageID // the keys of pkgs in order; nil after a change
	sets   int
}

type entry struct {
	pkg   relocate.Package
	files []wharf.File
}

var _ relocate.Index = (*Index)(nil)

// NewIndex returns an empty index.
func NewIndex() *Index { return &Index{pkgs: map[wharf.PackageID]*entry{}} }

// Add adds or replaces a package with its files; Size and LongestPath are
// computed from the files.
func (x *Index) Add(p relocate.Package, files []wharf.File) {
	x.mu.Lock()
	defer x.mu.Unlock()
	files = slices.Clone(files)
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	p.Size, p.LongestPath = 0, ""
	for _, f := range files {
		p.Size += f.Size
		if len(f.Path) > len(p.LongestPath) {
			p.LongestPath = f.Path
		}
	}
	if _, ok := x.pkgs[p.ID]; !ok {
		x.sorted = nil
	}
	x.pkgs[p.ID] = &entry{pkg: p, files: files}
}

// Remove removes a package (as if unassigned).
func (x *Index) Remove(id wharf.PackageID) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.pkgs, id)
	x.sorted = nil
}

// Get returns a package.
func (x *Index) Get(id wharf.PackageID) (relocate.Package, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	e, ok := x.pkgs[id]
	if !ok {
		return relocate.Package{}, false
	}
	return e.pkg, true
}

// All returns every package, by ID.
func (x *Index) All() []relocate.Package {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []relocate.Package
	for _, e := range x.pkgs {
		out = append(out, e.pkg)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// FileList returns a package's files.
func (x *Index) FileList(id wharf.PackageID) []wharf.File {
	x.mu.Lock()
	defer x.mu.Unlock()
	if e, ok := x.pkgs[id]; ok {
		return slices.Clone(e.files)
	}
	return nil
}

// SetLocations returns how many SetLocation calls succeeded.
func (x *Index) SetLocations() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.sets
}

func (x *Index) fail(op string) error {
	if x.Fail == nil {
		return nil
	}
	return x.Fail(op)
}

// Packages implements relocate.Index.
func (x *Index) Packages(ctx context.Context, after wharf.PackageID, limit int) ([]relocate.Package, error) {
	if err := x.fail("packages"); err != nil {
		return nil, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.sorted == nil {
		x.sorted = make([]wharf.PackageID, 0, len(x.pkgs))
		for id := range x.pkgs {
			x.sorted = append(x.sorted, id)
		}
		slices.Sort(x.sorted)
	}
	i := sort.Search(len(x.sorted), func(i int) bool { return x.sorted[i] > after })
	var out []relocate.Package
	for _, id := range x.sorted[i:min(len(x.sorted), i+limit)] {
		out = append(out, x.pkgs[id].pkg)
	}
	return out, nil
}

// Files implements relocate.Index.
func (x *Index) Files(ctx context.Context, id wharf.PackageID, after string, limit int) ([]wharf.File, error) {
	if err := x.fail("files"); err != nil {
		return nil, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	e, ok := x.pkgs[id]
	if !ok {
		return nil, wharf.Errorf(wharf.ErrNotFound, "package %s not in the index", id)
	}
	i := sort.Search(len(e.files), func(i int) bool { return e.files[i].Path > after })
	out := e.files[i:]
	if len(out) > limit {
		out = out[:limit]
	}
	return slices.Clone(out), nil
}

// SetLocation implements relocate.Index.
func (x *Index) SetLocation(ctx context.Context, id wharf.PackageID, loc relocate.Location) error {
	if err := x.fail("set-location"); err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	e, ok := x.pkgs[id]
	if !ok {
		return wharf.Errorf(wharf.ErrNotFound, "package %s not in the index", id)
	}
	e.pkg.Location = loc
	x.sets++
	return nil
}

// SetRoot implements relocate.Index.
func (x *Index) SetRoot(ctx context.Context, from, to string) (int, error) {
	if err := x.fail("set-root"); err != nil {
		return 0, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	from, to = filepath.Clean(from), filepath.Clean(to)
	n := 0
	for _, e := range x.pkgs {
		if filepath.Dir(filepath.Clean(e.pkg.Folder)) == from {
			e.pkg.Folder = filepath.Join(to, filepath.Base(e.pkg.Folder))
			n++
		}
	}
	x.sets++
	return n, nil
}

// Journal is an in-memory relocate.Journal. The zero value is ready to use.
type Journal struct {
	// Fail, when set, is called first by every method with its name
	// ("begin", "advance", "close", "list"); a non-nil error is returned
	// and nothing changes.
	Fail func(op string) error

	mu      sync.Mutex
	open    []relocate.Entry
	history []string
}

var _ relocate.Journal = (*Journal)(nil)

func (j *Journal) fail(op string) error {
	if j.Fail == nil {
		return nil
	}
	return j.Fail(op)
}

func (j *Journal) find(key string) int {
	return slices.IndexFunc(j.open, func(e relocate.Entry) bool { return e.Key == key })
}

// Begin implements relocate.Journal.
func (j *Journal) Begin(ctx context.Context, e relocate.Entry) error {
	if err := j.fail("begin"); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.find(e.Key) >= 0 {
		return wharf.Errorf(wharf.ErrExists, "journal entry %s is open", e.Key)
	}
	j.open = append(j.open, e)
	j.history = append(j.history, fmt.Sprintf("begin %s %s", e.Key, e.Step))
	return nil
}

// Advance implements relocate.Journal.
func (j *Journal) Advance(ctx context.Context, key string, step relocate.Step) error {
	if err := j.fail("advance"); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	i := j.find(key)
	if i < 0 {
		return wharf.Errorf(wharf.ErrNotFound, "no open journal entry %s", key)
	}
	j.open[i].Step = step
	j.history = append(j.history, fmt.Sprintf("advance %s %s", key, step))
	return nil
}

// Close implements relocate.Journal.
func (j *Journal) Close(ctx context.Context, key string) error {
	if err := j.fail("close"); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if i := j.find(key); i >= 0 {
		j.open = slices.Delete(j.open, i, i+1)
		j.history = append(j.history, "close "+key)
	}
	return nil
}

// List implements relocate.Journal.
func (j *Journal) List(ctx context.Context) ([]relocate.Entry, error) {
	if err := j.fail("list"); err != nil {
		return nil, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.open), nil
}

// Open returns the open entries (List without the Fail hook).
func (j *Journal) Open() []relocate.Entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.open)
}

// History returns every change made, in order ("begin KEY STEP",
// "advance KEY STEP", "close KEY").
func (j *Journal) History() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.history)
}

// WritePackage writes files (relative '/'-separated path → content) into
// the new folder folder (its parent must exist), durably, and returns the
// manifest.
func WritePackage(f fsys.FS, folder string, files map[string][]byte) ([]wharf.File, error) {
	if err := f.Mkdir(folder, 0o755); err != nil {
		return nil, err
	}
	dirs := []string{folder}
	made := map[string]bool{folder: true}
	var out []wharf.File
	for _, rel := range slices.Sorted(maps.Keys(files)) {
		data := files[rel]
		p := filepath.Join(folder, filepath.FromSlash(rel))
		var chain []string // missing folders, deepest first
		for d := filepath.Dir(p); !made[d]; d = filepath.Dir(d) {
			chain = append(chain, d)
		}
		for i := len(chain) - 1; i >= 0; i-- {
			if err := f.Mkdir(chain[i], 0o755); err != nil {
				return nil, err
			}
			made[chain[i]] = true
			dirs = append(dirs, chain[i])
		}
		h, err := f.Create(p, 0o644)
		if err != nil {
			return nil, err
		}
		if _, err := h.Write(data); err != nil {
			h.Close()
			return nil, err
		}
		if err := h.Sync(); err != nil {
			h.Close()
			return nil, err
		}
		if err := h.Close(); err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		out = append(out, wharf.File{Path: rel, Size: int64(len(data)), SHA256: wharf.Digest(hex.EncodeToString(sum[:]))})
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := f.SyncDir(dirs[i]); err != nil {
			return nil, err
		}
	}
	return out, f.SyncDir(filepath.Dir(folder))
}

// VerifyPackage checks that the folder at path (followed if a link) holds
// exactly files: every one with its size and SHA-256, and nothing else.
func VerifyPackage(f fsys.FS, path string, files []wharf.File) error {
	want := map[string]wharf.File{}
	for _, fl := range files {
		want[filepath.FromSlash(fl.Path)] = fl
	}
	var errs []error
	seen := 0
	var walk func(dir, rel string) error
	walk = func(dir, rel string) error {
		es, err := f.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range es {
			r := filepath.Join(rel, e.Name())
			p := filepath.Join(dir, e.Name())
			if e.IsDir() {
				if err := walk(p, r); err != nil {
					return err
				}
				continue
			}
			fl, ok := want[r]
			if !ok {
				errs = append(errs, fmt.Errorf("%s: not in the manifest", p))
				continue
			}
			seen++
			if err := checkFile(f, p, fl); err != nil {
				errs = append(errs, err)
			}
		}
		return nil
	}
	if err := walk(path, ""); err != nil {
		return fmt.Errorf("verify %s: %w", path, err)
	}
	if seen != len(files) {
		errs = append(errs, fmt.Errorf("%s holds %d of the %d files of its manifest", path, seen, len(files)))
	}
	return errors.Join(errs...)
}

func checkFile(f fsys.FS, p string, fl wharf.File) error {
	h, err := f.Open(p)
	if err != nil {
		return err
	}
	defer h.Close()
	s := sha256.New()
	n, err := io.Copy(s, h)
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	if n != fl.Size || hex.EncodeToString(s.Sum(nil)) != string(fl.SHA256) {
		return fmt.Errorf("%s: %d bytes with sha256 %x, want %d bytes with %s", p, n, s.Sum(nil), fl.Size, fl.SHA256)
	}
	return nil
}

// Find returns every path below root (links not followed) whose last
// element is name, sorted; folders that cannot be read are skipped.
func Find(f fsys.FS, root, name string) []string {
	var out []string
	_ = fsys.WalkLstat(f, root, func(p string, fi fs.FileInfo) error {
		if filepath.Base(p) == name && p != root {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// ID returns a deterministic package id for tests: n in its last digits.
func ID(n int) wharf.PackageID {
	s := fmt.Sprintf("%012d", n)
	return wharf.PackageID("00000000-0000-4000-8000-" + s[len(s)-12:])
}
