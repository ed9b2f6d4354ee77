// Package storeroot owns the on-disk layout of a Package Server's store
// roots: the names inside a root, its marker, preparing a new root and
// retiring an empty one, the temporary and trash folders, and the protocol
// that writes a new package whole or not at all. Everything goes through
// fsys.FS, so the crash-point matrix covers every caller: the downloader
// (package fetch), the relocation engine (package relocate) and its
// controller (package storagectl). The state DB (package store) records
// which package is in which root; this package never looks at it.
//
// # Layout
//
// A store root is a folder that holds package folders: the primary
// location (<install dir>/Package Delivery by default, or the custom path
// of the policy), <volume root>/Package Delivery on a volume that took
// rotated packages, or a package's custom location.
//
//	<root>/.wharf-store                  marker, JSON {"server": NAME, "created": TIME, "made_root": BOOL}
//	<root>/.wharf-store.tmp              the marker being written (never read)
//	<root>/<package id>/<relative path>  a whole, verified package
//	<root>/<package id> -> <folder>      a link to a package left behind by a relocation
//	<root>/.wharf-tmp/<package id>/      a package being downloaded (never served)
//	<root>/.wharf-relocate/<package id>/ a package being copied to this root by a relocation
//	<root>/.wharf-trash/<name>           folders being removed
//	<root>/.wharf-probe-<n>              a writability probe of a relocation plan, removed at once
//
// Entries of the first and the last four kinds are Wharf's own
// ([IsOwn]): they do not make a folder "not empty" when it is checked as a
// relocation target, and they go when a root is retired.
//
// # Marker
//
// An unmounted volume looks empty, and empty must never be read as
// "deleted": a root whose marker is missing is unavailable, not empty. The
// marker is the first thing written into a new root ([Roots.Prepare]):
// under a fixed temporary name, synced, renamed into place, and the root
// synced; a crash leaves no marker or a whole one, and at worst the
// temporary file, which is Wharf's own and is replaced by the next Prepare.
//
// # Writing a package
//
// A new package is assembled in a [Staging] folder on the root's volume
// (.wharf-tmp/<id> for a download, .wharf-relocate/<id> for a relocation
// copy): its files are created there, verified by the caller and fsynced,
// every folder of the tree is synced ([Staging.SyncFolders]), and the tree
// is renamed into place without replacing anything ([Staging.Place]), the
// folders on both sides synced. A package is therefore absent or whole
// under its name.
//
// # Removal and retirement
//
// A folder is removed by renaming it into the root's trash first
// ([Roots.Trash]), so a half-removed folder never sits under a package's
// name; what a crash leaves in the trash is garbage ([Roots.EmptyTrash]).
// A root that holds nothing but Wharf's own entries (empty temporary
// folders, garbage in the trash) can be retired ([Roots.Retire]): after a
// consolidation the old roots go, and so does the target of a relocation
// that was canceled before anything stayed there. The root folder itself is
// removed only when Wharf made it (the marker says so, or it is a "Package
// Delivery" folder); Wharf never removes what it did not create.
package storeroot

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wharf-project/wharf/internal/ps/clock"
	"github.com/wharf-project/wharf/internal/ps/fsys"
)

// Names inside a store root, and the folder name of default and rotated
// roots.
const (
	// DirName is the name of the folder that holds packages: the default
	// location is <install dir>/DirName, a rotated root <volume
	// root>/DirName.
	DirName = "Package Delivery"
	// MarkerName marks a folder as a Wharf store and names its Package
	// Server.
	MarkerName = ".wharf-store"
	// markerTemp is the name the marker is written under.
	markerTemp = MarkerName + ".tmp"
	// DownloadDir holds packages being downloaded: DownloadDir/<id>.
	DownloadDir = ".wharf-tmp"
	// RelocateDir holds packages being copied into the root by a
	// relocation: RelocateDir/<id>.
	RelocateDir = ".wharf-relocate"
	// TrashDir holds folders being removed.
	TrashDir = ".wharf-trash"
	// ProbePrefix starts the name of a file that tests whether a folder is
	// writable (a relocation plan creates and removes one at once).
	ProbePrefix = ".wharf-probe-"
)

// ownFolders are the folders of a root that are Wharf's bookkeeping.
var ownFolders = []string{DownloadDir, RelocateDir, TrashDir}

// IsOwn reports whether name, an entry of a store root, is Wharf's own
// bookkeeping rather than a package or somebody else's file: the marker,
// its temporary name (also the .wharf-store.tmp-<random> of Wharf
// versions before this package), the temporary and trash folders, a
// writability probe.
func IsOwn(name string) bool {
	switch {
	case name == MarkerName, strings.HasPrefix(name, markerTemp), strings.HasPrefix(name, ProbePrefix):
		return true
	}
	for _, d := range ownFolders {
		if name == d {
			return true
		}
	}
	return false
}

// PackageDir returns the folder of package id in root.
func PackageDir(root, id string) string { return filepath.Join(root, id) }

// DownloadTemp returns the folder package id is downloaded into.
func DownloadTemp(root, id string) string { return filepath.Join(root, DownloadDir, id) }

// RelocateTemp returns the folder a relocation copies package id into.
func RelocateTemp(root, id string) string { return filepath.Join(root, RelocateDir, id) }

// TrashPath returns the name folder name takes in root's trash.
func TrashPath(root, name string) string { return filepath.Join(root, TrashDir, name) }

// Marker is the content of a root's marker file.
type Marker struct {
	Server  string    `json:"server"`
	Created time.Time `json:"created"`
	// MadeRoot is set when Wharf created the root folder itself, so it
	// may remove it again once empty.
	MadeRoot bool `json:"made_root,omitempty"`
}

// ErrNoMarker is what ReadMarker returns (wrapped, with fs.ErrNotExist) for
// a root without a marker.
var ErrNoMarker = errors.New("no store marker")

// Roots is the layout of one Package Server's store roots on a file
// system. Create one with New and share it between the parts that write
// into roots: Prepare and Retire are serialized, and a root pinned with
// Acquire is never retired. Its methods are safe for concurrent use.
type Roots struct {
	fs     fsys.FS
	server string
	clock  clock.Clock

	mu     sync.Mutex
	pinned map[string]int // root → Acquire calls not yet released
}

// New returns the layout of the roots of Package Server server on fsys; c
// dates new markers (nil: the wall clock).
func New(fs fsys.FS, server string, c clock.Clock) *Roots {
	if c == nil {
		c = clock.Real{}
	}
	return &Roots{fs: fs, server: server, clock: c, pinned: map[string]int{}}
}

// FS returns the file system the roots are on.
func (r *Roots) FS() fsys.FS { return r.fs }

// Server returns the name of the Package Server the roots belong to.
func (r *Roots) Server() string { return r.server }

// ReadMarker reads root's marker. A root without one gives an error
// matching ErrNoMarker and fs.ErrNotExist; a marker that is not a file or
// not valid JSON, an error that says so.
func (r *Roots) ReadMarker(root string) (Marker, error) {
	name := filepath.Join(root, MarkerName)
	fi, err := r.fs.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Marker{}, fmt.Errorf("store root %s: %w: %w", root, ErrNoMarker, err)
	case err != nil:
		return Marker{}, fmt.Errorf("check store marker in %s: %w", root, err)
	case !fi.Mode().IsRegular():
		return Marker{}, fmt.Errorf("check store marker in %s: %s is not a file", root, MarkerName)
	}
	f, err := r.fs.Open(name)
	if err != nil {
		return Marker{}, fmt.Errorf("read store marker in %s: %w", root, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return Marker{}, fmt.Errorf("read store marker in %s: %w", root, err)
	}
	var m Marker
	if err := json.Unmarshal(b, &m); err != nil {
		return Marker{}, fmt.Errorf("read store marker %s: %w", name, err)
	}
	return m, nil
}

// HasMarker reports whether root holds a marker file. An error other than
// "does not exist" (permission, I/O, not a file) is returned: the root
// cannot be trusted then either.
func (r *Roots) HasMarker(root string) (bool, error) {
	fi, err := r.fs.Lstat(filepath.Join(root, MarkerName))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("check store marker in %s: %w", root, err)
	case !fi.Mode().IsRegular():
		return false, fmt.Errorf("check store marker in %s: %s is not a file", root, MarkerName)
	}
	return true, nil
}

// Prepare makes root a store root of this server: the folder and its
// missing parents are created, each new folder's parent synced, and the
// marker is written if there is none (temporary file, synced, renamed into
// place, root synced). It does not look at what else the folder holds:
// whether it may become a root is the caller's decision (a relocation
// target must be empty or a store of this server; the downloader refuses a
// root that lost its marker while packages are recorded there).
func (r *Roots) Prepare(root string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.prepareLocked(root)
}

func (r *Roots) prepareLocked(root string) error {
	made, err := r.mkdirAll(root)
	if err != nil {
		return fmt.Errorf("create store root %s: %w", root, err)
	}
	has, err := r.HasMarker(root)
	if err != nil || has {
		return err
	}
	if err := r.writeMarker(root, Marker{Server: r.server, Created: r.clock.Now().UTC(), MadeRoot: made}); err != nil {
		return fmt.Errorf("write store marker in %s: %w", root, err)
	}
	return nil
}

// mkdirAll creates dir and its missing parents durably; it reports whether
// it created dir itself.
func (r *Roots) mkdirAll(dir string) (bool, error) {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := r.fs.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return false, &fs.PathError{Op: "mkdir", Path: d, Err: syscall.ENOTDIR}
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := r.fs.Mkdir(missing[i], 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return false, err
		}
		if err := r.fs.SyncDir(filepath.Dir(missing[i])); err != nil {
			return false, err
		}
	}
	return len(missing) > 0, nil
}

// writeMarker writes root's marker atomically.
func (r *Roots) writeMarker(root string, m Marker) error {
	tmp := filepath.Join(root, markerTemp)
	if err := r.fs.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	data, _ := json.Marshal(m)
	f, err := r.fs.Create(tmp, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = r.fs.Rename(tmp, filepath.Join(root, MarkerName))
	}
	if err != nil {
		return err
	}
	return r.fs.SyncDir(root)
}

// Acquire pins root while the caller writes into it: Retire leaves it
// alone until release is called (once).
func (r *Roots) Acquire(root string) (release func()) {
	root = filepath.Clean(root)
	r.mu.Lock()
	r.pinned[root]++
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.pinned[root]--; r.pinned[root] <= 0 {
				delete(r.pinned, root)
			}
		})
	}
}

// Retire removes root when it is a store root of this server that holds
// nothing but Wharf's own entries, with its temporary folders empty (a
// download or copy under way keeps it) and not pinned by Acquire; the
// garbage in its trash goes with it. The marker goes last but one, the
// folder itself last, and only when Wharf made it (Marker.MadeRoot, or a
// folder named DirName); the parent is synced. A crash in between leaves a
// root without packages, which is harmless and retired again later. It
// reports whether the root is gone (false, nil when it must stay). The
// caller makes sure the state DB records no package or link in root.
func (r *Roots) Retire(root string) (bool, error) {
	root = filepath.Clean(root)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pinned[root] > 0 {
		return false, nil
	}
	m, err := r.ReadMarker(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil // not a root (any more), or not mounted: not ours to judge
	case err != nil:
		return false, err
	case m.Server != r.server:
		return false, nil
	}
	entries, err := r.fs.ReadDir(root)
	if err != nil {
		return false, fmt.Errorf("retire store root %s: %w", root, err)
	}
	for _, e := range entries {
		if !IsOwn(e.Name()) {
			return false, nil // a package, a link, or somebody else's file
		}
	}
	for _, d := range []string{DownloadDir, RelocateDir} {
		es, err := r.fs.ReadDir(filepath.Join(root, d))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("retire store root %s: %w", root, err)
		}
		if len(es) > 0 {
			return false, nil // a download or a copy under way (or to resume)
		}
	}
	for _, e := range entries {
		if e.Name() == MarkerName {
			continue
		}
		if err := r.fs.RemoveAll(filepath.Join(root, e.Name())); err != nil {
			return false, fmt.Errorf("retire store root %s: %w", root, err)
		}
	}
	if err := r.fs.SyncDir(root); err != nil {
		return false, fmt.Errorf("retire store root %s: %w", root, err)
	}
	if err := r.fs.Remove(filepath.Join(root, MarkerName)); err != nil {
		return false, fmt.Errorf("retire store root %s: %w", root, err)
	}
	if !m.MadeRoot && filepath.Base(root) != DirName {
		return true, r.fs.SyncDir(root)
	}
	if err := r.fs.Remove(root); err != nil {
		// Something appeared meanwhile: the folder stays, unmarked and
		// without packages (like the empty folder it was).
		return true, r.fs.SyncDir(root)
	}
	return true, r.fs.SyncDir(filepath.Dir(root))
}

// Trash removes the file or folder tree path, which is in root, crash
// safely: it is first renamed into root's trash under a unique name, both
// folders synced, and then removed there. A missing path is not an error.
func (r *Roots) Trash(root, path string) error {
	if _, err := r.fs.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	trash := filepath.Join(root, TrashDir)
	if err := r.fs.Mkdir(trash, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	} else if err == nil {
		if err := r.fs.SyncDir(root); err != nil {
			return fmt.Errorf("remove %s: %w", path, err)
		}
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	dst := filepath.Join(trash, filepath.Base(path)+"-"+hex.EncodeToString(b[:]))
	if err := r.fs.Rename(path, dst); err != nil {
		return fmt.Errorf("remove %s: move to %s: %w", path, trash, err)
	}
	if err := r.fs.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	if err := r.fs.RemoveAll(dst); err != nil {
		return fmt.Errorf("remove %s: %w", dst, err)
	}
	return nil
}

// EmptyTrash removes everything in root's trash; a missing trash folder is
// not an error.
func (r *Roots) EmptyTrash(root string) error {
	trash := filepath.Join(root, TrashDir)
	entries, err := r.fs.ReadDir(trash)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("empty %s: %w", trash, err)
	}
	for _, e := range entries {
		if err := r.fs.RemoveAll(filepath.Join(trash, e.Name())); err != nil {
			return fmt.Errorf("empty %s: %w", trash, err)
		}
	}
	return nil
}

// ErrNotWhole is what MoveRoot answers when a root cannot move as one
// unit: something writes into it, it holds what is not the caller's, or
// the target is not free. The caller moves package by package instead.
var ErrNotWhole = errors.New("the store root cannot move as a whole")

// MoveRoot moves the whole store root from to to with one rename — every
// package in it, its marker and bookkeeping — when that is safe; it is the
// fast path of a relocation on one volume. It holds the layout's lock
// throughout, so no download prepares or pins either root meanwhile, and
// fails with an error matching ErrNotWhole, changing nothing, unless:
//
//   - neither root is pinned (no download or copy is writing into it);
//   - every entry of from is Wharf's own (IsOwn) or one that ours accepts
//     (a package the caller is moving), with its temporary folders empty;
//   - to does not exist, or is an empty folder, or a store root of this
//     server holding nothing but Wharf's own entries (its marker and empty
//     bookkeeping, written when it became the target): those are removed
//     first.
//
// begin is called right before the rename (the caller's journal entry);
// its error stops the move. The rename never replaces anything; between
// volumes it fails with fsys.ErrCrossDevice (nothing changed, the caller
// copies instead). After it, the folders holding both names are synced and
// to gets a marker of this server if from had none.
func (r *Roots) MoveRoot(from, to string, ours func(name string) bool, begin func() error) error {
	from, to = filepath.Clean(from), filepath.Clean(to)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pinned[from] > 0 || r.pinned[to] > 0 {
		return fmt.Errorf("%w: a download or copy is writing into %s or %s", ErrNotWhole, from, to)
	}
	entries, err := r.fs.ReadDir(from)
	if err != nil {
		return fmt.Errorf("move store root %s: %w", from, err)
	}
	for _, e := range entries {
		switch n := e.Name(); {
		case n == DownloadDir || n == RelocateDir:
			if es, err := r.fs.ReadDir(filepath.Join(from, n)); err != nil || len(es) > 0 {
				return fmt.Errorf("%w: %s is in use", ErrNotWhole, filepath.Join(from, n))
			}
		case IsOwn(n), ours(n):
		default:
			return fmt.Errorf("%w: %s holds %s, which is not a package being moved", ErrNotWhole, from, n)
		}
	}
	var clear []string // Wharf's own entries of to, removed before the rename
	fi, err := r.fs.Lstat(to)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, err := r.mkdirAll(filepath.Dir(to)); err != nil {
			return fmt.Errorf("move store root %s: %w", from, err)
		}
	case err != nil:
		return fmt.Errorf("move store root %s: %w", from, err)
	case !fi.IsDir() || fsys.IsLink(fi):
		return fmt.Errorf("%w: %s is not a folder", ErrNotWhole, to)
	default:
		es, err := r.fs.ReadDir(to)
		if err != nil {
			return fmt.Errorf("move store root %s: %w", from, err)
		}
		for _, e := range es {
			if !IsOwn(e.Name()) {
				return fmt.Errorf("%w: %s is not empty", ErrNotWhole, to)
			}
			if e.Name() == DownloadDir || e.Name() == RelocateDir {
				if sub, err := r.fs.ReadDir(filepath.Join(to, e.Name())); err != nil || len(sub) > 0 {
					return fmt.Errorf("%w: %s is in use", ErrNotWhole, filepath.Join(to, e.Name()))
				}
			}
			clear = append(clear, e.Name())
		}
		if len(clear) > 0 {
			m, err := r.ReadMarker(to)
			if err != nil || m.Server != r.server {
				return fmt.Errorf("%w: %s is not an empty store of this server", ErrNotWhole, to)
			}
		}
	}
	hadMarker, err := r.HasMarker(from)
	if err != nil {
		return fmt.Errorf("move store root %s: %w", from, err)
	}
	if err := begin(); err != nil {
		return err
	}
	if fi != nil {
		// The empty target goes; the root takes its name. A crash here
		// leaves the root where it was, and the target missing: nothing
		// of it was anybody's.
		for _, n := range clear {
			if n == MarkerName {
				continue
			}
			if err := r.fs.RemoveAll(filepath.Join(to, n)); err != nil {
				return fmt.Errorf("move store root %s: clear %s: %w", from, to, err)
			}
		}
		if err := r.fs.Remove(filepath.Join(to, MarkerName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("move store root %s: clear %s: %w", from, to, err)
		}
		if err := r.fs.Remove(to); err != nil {
			return fmt.Errorf("move store root %s: clear %s: %w", from, to, err)
		}
	}
	if err := r.fs.Rename(from, to); err != nil {
		return err
	}
	if err := r.fs.SyncDir(filepath.Dir(to)); err != nil {
		return err
	}
	if filepath.Dir(from) != filepath.Dir(to) {
		if err := r.fs.SyncDir(filepath.Dir(from)); err != nil {
			return err
		}
	}
	if !hadMarker {
		return r.prepareLocked(to)
	}
	return nil
}
