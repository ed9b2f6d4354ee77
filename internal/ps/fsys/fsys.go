// Package fsys is the narrow file system the Package Server's store and
// relocation engine see (STYLE §5): the dozen operations they need to move
// package folders crash-safely between volumes, and nothing more.
//
// # Implementations
//
//   - [OS] is the running system. On Linux, Rename never replaces
//     (renameat2 RENAME_NOREPLACE), Exchange swaps two names atomically
//     (RENAME_EXCHANGE) and CanRemove reads the immutable and append-only
//     attributes. On Windows, links are junctions, Exchange is unsupported
//     and CanRemove looks for read-only attributes and handles held by other
//     processes.
//   - memfs.FS is an in-memory file system with a durability model: it
//     knows what was fsynced, and Crash drops what was not. Volumes with
//     their own device (a rename between them fails with [ErrCrossDevice])
//     and size (ENOSPC), and immutable files, are knobs.
//   - faultfs.FS wraps any FS and fails chosen calls (EIO, ENOSPC, EXDEV,
//     EPERM, short writes), or every call from the Nth on ("crash at op N").
//
// Package fsystest is the conformance suite every implementation passes.
//
// # Paths and errors
//
// Names are OS paths (filepath syntax), absolute in practice. Errors are
// *fs.PathError or *os.LinkError values naming the operation and the paths;
// test them with errors.Is against fs.ErrNotExist, fs.ErrExist,
// fs.ErrPermission, the syscall errno (syscall.ENOSPC, syscall.EIO, ...)
// and the kinds of this package: [ErrCrossDevice], [ErrNotRemovable] and
// errors.ErrUnsupported.
package fsys

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
)

// VolumeSyncer is an optional interface of an FS that can make everything
// written to one volume durable with one call (Linux: syncfs(2)). It is
// the group commit of the relocation engine's copies: one call instead of
// an fsync of every file and folder copied. SyncVolume(path) makes every
// file's content and every folder's entries on the volume holding path
// durable; it fails with an error matching errors.ErrUnsupported where it
// cannot, and the caller then syncs file by file.
type VolumeSyncer interface {
	SyncVolume(path string) error
	// Volume names the volume holding path, which must exist: two paths
	// with the same name are synced by one SyncVolume, so callers syncing
	// at once can share one call.
	Volume(path string) (string, error)
}

// FS is the file system seam. Implementations are safe for concurrent use;
// two calls on different names never interfere.
type FS interface {
	// Open opens a file for reading, following symlinks.
	Open(name string) (File, error)
	// Create creates a new file for writing with permissions perm. It
	// fails with an error matching fs.ErrExist if name exists: it never
	// truncates or replaces anything.
	Create(name string, perm fs.FileMode) (File, error)
	// Append opens the file name for reading and appending, creating it
	// with permissions perm when missing: reads start at the beginning,
	// every write goes to the end. It resumes a file written in part (a
	// download after a restart): read what is there, then append the
	// rest.
	Append(name string, perm fs.FileMode) (File, error)
	// Mkdir creates one folder; its parent must exist. An existing name
	// fails with an error matching fs.ErrExist.
	Mkdir(name string, perm fs.FileMode) error
	// ReadDir lists a folder, sorted by name.
	ReadDir(name string) ([]fs.DirEntry, error)
	// Stat describes a file, following symlinks.
	Stat(name string) (fs.FileInfo, error)
	// Lstat describes a file without following a final symlink; a link
	// (a symlink, or a junction on Windows) has fs.ModeSymlink set.
	Lstat(name string) (fs.FileInfo, error)
	// Rename renames a file or folder. It never replaces: an existing
	// newname fails with an error matching fs.ErrExist. A rename between
	// filesystems fails with an error matching ErrCrossDevice (and
	// syscall.EXDEV), so the caller can copy instead. Decide whether a
	// rename is possible by trying it: it can fail across two mounts of
	// one filesystem.
	Rename(oldname, newname string) error
	// Exchange swaps the two existing names a and b atomically: after it,
	// a names what b named and b what a named. Where the OS or filesystem
	// cannot, it fails with an error matching errors.ErrUnsupported and
	// changes nothing.
	Exchange(a, b string) error
	// Remove removes a file, a link (not its target) or an empty folder.
	Remove(name string) error
	// RemoveAll removes name and everything below it, never following a
	// link. A missing name is not an error. On failure it goes on
	// removing what it can and returns the first error.
	RemoveAll(name string) error
	// Symlink makes link a link to the folder target, which should be an
	// absolute path (a symlink on Unix; a junction on Windows, which
	// needs an absolute target on a local volume).
	Symlink(target, link string) error
	// Readlink returns the target of the link name.
	Readlink(name string) (string, error)
	// SyncDir makes the entries of folder name (creations, renames,
	// removals inside it) durable.
	SyncDir(name string) error
	// CanRemove reports whether name and everything below it could be
	// removed now: nil if so, else an error matching ErrNotRemovable that
	// names the file in the way and why (an immutable or append-only
	// attribute, a read-only parent or mount, a read-only attribute or a
	// handle held by another process on Windows). It changes nothing.
	CanRemove(name string) error
}

// File is an open file.
type File interface {
	io.Reader
	io.Writer
	io.Closer
	// Sync makes the file's content durable.
	Sync() error
	Stat() (fs.FileInfo, error)
}

// Error kinds of this package; see the package doc.
var (
	// ErrCrossDevice: a rename between two filesystems (EXDEV on Unix,
	// ERROR_NOT_SAME_DEVICE on Windows).
	ErrCrossDevice = errors.New("cross-device rename")
	// ErrNotRemovable: CanRemove found something that cannot be removed.
	ErrNotRemovable = errors.New("cannot be removed")
)

// WithKind returns err marked with kind: the result's text is err's, and
// errors.Is matches both kind and everything err matches.
func WithKind(kind, err error) error {
	if err == nil {
		return nil
	}
	return &kindError{kind: kind, err: err}
}

type kindError struct{ kind, err error }

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// RemovalError is what CanRemove returns: Path (name or a file below it,
// or its parent) cannot be removed, for Reason. It matches
// ErrNotRemovable and Err, the underlying cause when there is one.
type RemovalError struct {
	Path   string
	Reason string
	Err    error
}

func (e *RemovalError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s cannot be removed: %s: %v", e.Path, e.Reason, e.Err)
	}
	return fmt.Sprintf("%s cannot be removed: %s", e.Path, e.Reason)
}

// Unwrap makes the error match ErrNotRemovable and its cause.
func (e *RemovalError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrNotRemovable, e.Err}
	}
	return []error{ErrNotRemovable}
}

// IsLink reports whether fi (from Lstat) describes a link.
func IsLink(fi fs.FileInfo) bool { return fi.Mode()&fs.ModeSymlink != 0 }

// Tree is the part of an FS that RemoveAllVia and WalkLstat need.
type Tree interface {
	Lstat(name string) (fs.FileInfo, error)
	ReadDir(name string) ([]fs.DirEntry, error)
	Remove(name string) error
}

// RemoveAllVia removes name and everything below it with fsys's Lstat,
// ReadDir and Remove, children first, never following a link, the way
// FS.RemoveAll is specified. Wrappers use it so each removal is one
// operation of their own.
func RemoveAllVia(fsys Tree, name string) error {
	fi, err := fsys.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var first error
	if fi.IsDir() && !IsLink(fi) {
		entries, err := fsys.ReadDir(name)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			first = err
		}
		for _, e := range entries {
			if err := RemoveAllVia(fsys, join(name, e.Name())); err != nil && first == nil {
				first = err
			}
		}
	}
	if err := fsys.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) && first == nil {
		first = err
	}
	return first
}

// WalkLstat calls fn for name and every file and folder below it, parents
// before children, with Lstat's answer; links are reported, not followed.
// An error from fn or from listing a folder ends the walk.
func WalkLstat(fsys Tree, name string, fn func(path string, fi fs.FileInfo) error) error {
	fi, err := fsys.Lstat(name)
	if err != nil {
		return err
	}
	if err := fn(name, fi); err != nil {
		return err
	}
	if !fi.IsDir() || IsLink(fi) {
		return nil
	}
	entries, err := fsys.ReadDir(name)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := WalkLstat(fsys, join(name, e.Name()), fn); err != nil {
			return err
		}
	}
	return nil
}

// SortEntries sorts directory entries by name, as ReadDir returns them.
func SortEntries(es []fs.DirEntry) {
	slices.SortFunc(es, func(a, b fs.DirEntry) int {
		switch {
		case a.Name() < b.Name():
			return -1
		case a.Name() > b.Name():
			return 1
		}
		return 0
	})
}
