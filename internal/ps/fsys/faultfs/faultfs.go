// Package faultfs wraps an fsys.FS and makes chosen calls fail: the Nth call
// of an operation, or calls on matching paths, with EIO, ENOSPC, EXDEV,
// EPERM, a short write or any error; or, in crash mode, the Nth call of any
// operation and every call after it, so the code under test stops as a
// killed process would (a test then calls memfs.FS.Crash and starts over).
//
// Every call through the wrapper — on the FS and on the files it opened —
// is one operation and is counted, so a test learns from a clean run how
// many operations N there are and can then crash at each k in 0..N.
// RemoveAll is carried out as the Lstat, ReadDir and Remove calls it is
// made of (each counted), so a crash can stop it half-way, as it can on a
// real disk.
package faultfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/wharf-project/wharf/internal/ps/fsys"
)

// Op names an operation.
type Op string

// The operations, as counted and matched.
const (
	OpAny       Op = ""
	OpOpen      Op = "open"
	OpCreate    Op = "create"
	OpAppend    Op = "append"
	OpMkdir     Op = "mkdir"
	OpReadDir   Op = "readdir"
	OpStat      Op = "stat"
	OpLstat     Op = "lstat"
	OpRename    Op = "rename"
	OpExchange  Op = "exchange"
	OpRemove    Op = "remove"
	OpSymlink   Op = "symlink"
	OpReadlink  Op = "readlink"
	OpSyncDir   Op = "syncdir"
	OpCanRemove Op = "canremove"
	OpSyncFS    Op = "syncfs"
	OpRead      Op = "read"
	OpWrite     Op = "write"
	OpSync      Op = "sync"
	OpFileStat  Op = "filestat"
	OpClose     Op = "close"
)

// ErrCrashed is returned by every operation from the crash point on.
var ErrCrashed = errors.New("faultfs: crashed")

// Rule makes matching calls fail.
type Rule struct {
	// Op is the operation to fail; OpAny matches every one.
	Op Op
	// Path, when not empty, must match a path of the call: equal to it,
	// or a filepath.Match pattern matching it, or, ending in a separator,
	// a prefix of it (a folder and everything below). Calls on a file
	// opened from a matching path match too.
	Path string
	// Nth, when not 0, fails only the Nth matching call (1-based);
	// otherwise every matching call fails.
	Nth int
	// Err is the error, wrapped in an *fs.PathError naming the call; nil
	// means syscall.EIO.
	Err error
	// Short, for OpWrite, writes half of the buffer before failing.
	Short bool

	seen int
}

// FS wraps an fsys.FS. Use New; methods are safe for concurrent use.
type FS struct {
	inner fsys.FS

	mu      sync.Mutex
	ops     int
	crashAt int // -1: never
	rules   []*Rule
	trace   func(n int, op Op, path string)
}

var _ fsys.FS = (*FS)(nil)

// New wraps inner; nothing fails until told to.
func New(inner fsys.FS) *FS { return &FS{inner: inner, crashAt: -1} }

// Fail adds a rule.
func (f *FS) Fail(r Rule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r.seen = 0
	f.rules = append(f.rules, &r)
}

// Reset removes every rule, the crash point, and sets the count to 0.
func (f *FS) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules, f.ops, f.crashAt = nil, 0, -1
}

// CrashAt makes operation k (0-based: k operations succeed) and every
// operation after it fail with ErrCrashed, counting from now. A negative k
// turns crash mode off.
func (f *FS) CrashAt(k int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = 0
	f.crashAt = k
}

// Crashed reports whether the crash point has been reached; fakes of other
// durable state (a journal, an index) ask it to stop with the FS.
func (f *FS) Crashed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.crashAt >= 0 && f.ops > f.crashAt
}

// Ops returns the number of operations so far (since New, Reset or
// CrashAt), failed ones included.
func (f *FS) Ops() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ops
}

// Trace calls fn for every operation, with its 0-based number, before it
// runs (nil turns tracing off). For debugging a crash point.
func (f *FS) Trace(fn func(n int, op Op, path string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.trace = fn
}

// before counts an operation and returns the error it must fail with, if
// any, and whether it must be a short write.
func (f *FS) before(op Op, paths ...string) (short bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.ops
	f.ops++
	if f.trace != nil {
		p := ""
		if len(paths) > 0 {
			p = paths[0]
		}
		f.trace(n, op, p)
	}
	if f.crashAt >= 0 && n >= f.crashAt {
		return false, ErrCrashed
	}
	for _, r := range f.rules {
		if r.Op != OpAny && r.Op != op {
			continue
		}
		if r.Path != "" && !anyMatch(r.Path, paths) {
			continue
		}
		r.seen++
		if r.Nth != 0 && r.seen != r.Nth {
			continue
		}
		err = r.Err
		if err == nil {
			err = syscall.EIO
		}
		return r.Short && op == OpWrite, err
	}
	return false, nil
}

func anyMatch(pattern string, paths []string) bool {
	for _, p := range paths {
		if p == pattern {
			return true
		}
		if strings.HasSuffix(pattern, string(filepath.Separator)) && strings.HasPrefix(p, pattern) {
			return true
		}
		if ok, _ := filepath.Match(pattern, p); ok {
			return true
		}
	}
	return false
}

func pathErr(op Op, path string, err error) error {
	return &fs.PathError{Op: string(op), Path: path, Err: err}
}

func linkErr(op Op, a, b string, err error) error {
	return &os.LinkError{Op: string(op), Old: a, New: b, Err: err}
}

// Open implements fsys.FS.
func (f *FS) Open(name string) (fsys.File, error) {
	if _, err := f.before(OpOpen, name); err != nil {
		return nil, pathErr(OpOpen, name, err)
	}
	h, err := f.inner.Open(name)
	if err != nil {
		return nil, err
	}
	return &file{fs: f, inner: h, name: name}, nil
}

// Create implements fsys.FS.
func (f *FS) Create(name string, perm fs.FileMode) (fsys.File, error) {
	if _, err := f.before(OpCreate, name); err != nil {
		return nil, pathErr(OpCreate, name, err)
	}
	h, err := f.inner.Create(name, perm)
	if err != nil {
		return nil, err
	}
	return &file{fs: f, inner: h, name: name}, nil
}

// Append implements fsys.FS.
func (f *FS) Append(name string, perm fs.FileMode) (fsys.File, error) {
	if _, err := f.before(OpAppend, name); err != nil {
		return nil, pathErr(OpAppend, name, err)
	}
	h, err := f.inner.Append(name, perm)
	if err != nil {
		return nil, err
	}
	return &file{fs: f, inner: h, name: name}, nil
}

// Mkdir implements fsys.FS.
func (f *FS) Mkdir(name string, perm fs.FileMode) error {
	if _, err := f.before(OpMkdir, name); err != nil {
		return pathErr(OpMkdir, name, err)
	}
	return f.inner.Mkdir(name, perm)
}

// ReadDir implements fsys.FS.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	if _, err := f.before(OpReadDir, name); err != nil {
		return nil, pathErr(OpReadDir, name, err)
	}
	return f.inner.ReadDir(name)
}

// Stat implements fsys.FS.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	if _, err := f.before(OpStat, name); err != nil {
		return nil, pathErr(OpStat, name, err)
	}
	return f.inner.Stat(name)
}

// Lstat implements fsys.FS.
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	if _, err := f.before(OpLstat, name); err != nil {
		return nil, pathErr(OpLstat, name, err)
	}
	return f.inner.Lstat(name)
}

// Rename implements fsys.FS. An injected EXDEV is marked
// fsys.ErrCrossDevice, as the real implementations mark theirs.
func (f *FS) Rename(oldname, newname string) error {
	if _, err := f.before(OpRename, oldname, newname); err != nil {
		if errors.Is(err, syscall.EXDEV) {
			err = fsys.WithKind(fsys.ErrCrossDevice, err)
		}
		return linkErr(OpRename, oldname, newname, err)
	}
	return f.inner.Rename(oldname, newname)
}

// Exchange implements fsys.FS.
func (f *FS) Exchange(a, b string) error {
	if _, err := f.before(OpExchange, a, b); err != nil {
		return linkErr(OpExchange, a, b, err)
	}
	return f.inner.Exchange(a, b)
}

// Remove implements fsys.FS.
func (f *FS) Remove(name string) error {
	if _, err := f.before(OpRemove, name); err != nil {
		return pathErr(OpRemove, name, err)
	}
	return f.inner.Remove(name)
}

// RemoveAll implements fsys.FS through this wrapper's Lstat, ReadDir and
// Remove, so each step is an operation that can fail or crash.
func (f *FS) RemoveAll(name string) error { return fsys.RemoveAllVia(f, name) }

// Symlink implements fsys.FS.
func (f *FS) Symlink(target, link string) error {
	if _, err := f.before(OpSymlink, link, target); err != nil {
		return linkErr(OpSymlink, target, link, err)
	}
	return f.inner.Symlink(target, link)
}

// Readlink implements fsys.FS.
func (f *FS) Readlink(name string) (string, error) {
	if _, err := f.before(OpReadlink, name); err != nil {
		return "", pathErr(OpReadlink, name, err)
	}
	return f.inner.Readlink(name)
}

// SyncDir implements fsys.FS.
func (f *FS) SyncDir(name string) error {
	if _, err := f.before(OpSyncDir, name); err != nil {
		return pathErr(OpSyncDir, name, err)
	}
	return f.inner.SyncDir(name)
}

// SyncVolume implements fsys.VolumeSyncer when the wrapped FS does; else
// it fails with errors.ErrUnsupported.
func (f *FS) SyncVolume(name string) error {
	vs, ok := f.inner.(fsys.VolumeSyncer)
	if !ok {
		return pathErr(OpSyncFS, name, errors.ErrUnsupported)
	}
	if _, err := f.before(OpSyncFS, name); err != nil {
		return pathErr(OpSyncFS, name, err)
	}
	return vs.SyncVolume(name)
}

// Volume implements fsys.VolumeSyncer when the wrapped FS does.
func (f *FS) Volume(name string) (string, error) {
	vs, ok := f.inner.(fsys.VolumeSyncer)
	if !ok {
		return "", pathErr(OpSyncFS, name, errors.ErrUnsupported)
	}
	return vs.Volume(name)
}

// CanRemove implements fsys.FS. An injected error that is not already a
// removal error is reported as one, with the injected error as its cause.
func (f *FS) CanRemove(name string) error {
	if _, err := f.before(OpCanRemove, name); err != nil {
		if errors.Is(err, ErrCrashed) {
			return pathErr(OpCanRemove, name, err)
		}
		if !errors.Is(err, fsys.ErrNotRemovable) {
			err = &fsys.RemovalError{Path: name, Reason: "injected fault", Err: err}
		}
		return err
	}
	return f.inner.CanRemove(name)
}

type file struct {
	fs    *FS
	inner fsys.File
	name  string
}

func (h *file) Read(p []byte) (int, error) {
	if _, err := h.fs.before(OpRead, h.name); err != nil {
		return 0, pathErr(OpRead, h.name, err)
	}
	return h.inner.Read(p)
}

func (h *file) Write(p []byte) (int, error) {
	short, err := h.fs.before(OpWrite, h.name)
	if err == nil {
		return h.inner.Write(p)
	}
	if !short {
		return 0, pathErr(OpWrite, h.name, err)
	}
	n, werr := h.inner.Write(p[:len(p)/2])
	if werr != nil {
		return n, werr
	}
	if err == syscall.EIO {
		err = io.ErrShortWrite
	}
	return n, pathErr(OpWrite, h.name, err)
}

func (h *file) Sync() error {
	if _, err := h.fs.before(OpSync, h.name); err != nil {
		return pathErr(OpSync, h.name, err)
	}
	return h.inner.Sync()
}

func (h *file) Stat() (fs.FileInfo, error) {
	if _, err := h.fs.before(OpFileStat, h.name); err != nil {
		return nil, pathErr(OpFileStat, h.name, err)
	}
	return h.inner.Stat()
}

// Close always closes the inner file (a crashed process's files are closed
// too) and reports the injected error, if any.
func (h *file) Close() error {
	_, err := h.fs.before(OpClose, h.name)
	cerr := h.inner.Close()
	if err != nil {
		return pathErr(OpClose, h.name, err)
	}
	return cerr
}

// String describes the wrapper's state, for test logs.
func (f *FS) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("faultfs: %d ops, crash at %d, %d rules", f.ops, f.crashAt, len(f.rules))
}
