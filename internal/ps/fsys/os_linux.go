package fsys

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Inode flags read with FS_IOC_GETFLAGS (linux/fs.h); x/sys/unix does not
// name them.
const (
	fsImmutableFL = 0x00000010
	fsAppendFL    = 0x00000020
)

// Lstat implements [FS].
func (OS) Lstat(name string) (fs.FileInfo, error) { return os.Lstat(name) }

// Rename implements [FS] with renameat2(RENAME_NOREPLACE), which the kernel
// checks atomically. A filesystem that does not support the flag answers
// EINVAL (an old kernel ENOSYS); then a file is renamed by link(2) and
// unlink(2), which cannot replace either, and a folder by a rename(2)
// after checking that newname does not exist — a check another process
// could race, which Wharf's own folders (only the PS writes there) do not
// suffer from.
func (OS) Rename(oldname, newname string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldname, unix.AT_FDCWD, newname, unix.RENAME_NOREPLACE)
	if err == unix.EINVAL || err == unix.ENOSYS {
		err = checkedRename(oldname, newname)
	}
	return renameError("rename", oldname, newname, err)
}

func checkedRename(oldname, newname string) error {
	fi, err := os.Lstat(oldname)
	if err != nil {
		return underlying(err)
	}
	if fi.Mode().IsRegular() {
		if err := unix.Link(oldname, newname); err != nil {
			return err
		}
		return unix.Unlink(oldname)
	}
	if _, err := os.Lstat(newname); err == nil {
		return unix.EEXIST
	} else if !errors.Is(err, fs.ErrNotExist) {
		return underlying(err)
	}
	return unix.Rename(oldname, newname)
}

// Exchange implements [FS] with renameat2(RENAME_EXCHANGE); filesystems
// without it (EINVAL) give errors.ErrUnsupported.
func (OS) Exchange(a, b string) error {
	err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
	if err == unix.EINVAL || err == unix.ENOSYS {
		return &os.LinkError{Op: "exchange", Old: a, New: b, Err: WithKind(errors.ErrUnsupported, err)}
	}
	return renameError("exchange", a, b, err)
}

func renameError(op, a, b string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EXDEV):
		err = WithKind(ErrCrossDevice, err)
	}
	return &os.LinkError{Op: op, Old: a, New: b, Err: err}
}

// underlying strips the *PathError of an os call so the caller can wrap
// the errno in its own.
func underlying(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// RemoveAll implements [FS] (os.RemoveAll, which never follows links).
func (OS) RemoveAll(name string) error { return os.RemoveAll(name) }

// Symlink implements [FS].
func (OS) Symlink(target, link string) error { return os.Symlink(target, link) }

// Readlink implements [FS].
func (OS) Readlink(name string) (string, error) { return os.Readlink(name) }

// Volume implements [VolumeSyncer]: the device number of path's
// filesystem (st_dev), which syncfs(2) syncs as a whole.
func (OS) Volume(path string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "", &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	return strconv.FormatUint(st.Dev, 10), nil
}

// SyncVolume implements [VolumeSyncer]: syncfs(2) on the filesystem
// holding path.
func (OS) SyncVolume(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return &fs.PathError{Op: "syncfs", Path: path, Err: err}
	}
	return nil
}

var _ VolumeSyncer = OS{}

// CanRemove implements [FS]. name's parent folder must be on a writable
// mount, writable and searchable by this process (access(2), which also
// sees a read-only mount) and neither immutable nor append-only; every
// folder below name must be writable and searchable, and no file or folder
// in the tree immutable or append-only. Each entry costs one statx(2),
// which gives its type and, on the filesystems that keep them (ext4, XFS,
// Btrfs, tmpfs since Linux 6.0), its attributes; elsewhere they are asked
// with FS_IOC_GETFLAGS, and a filesystem without them (FAT through FUSE)
// has none.
func (OS) CanRemove(name string) error {
	parent := filepath.Dir(name)
	var st unix.Statfs_t
	if err := unix.Statfs(parent, &st); err != nil {
		return &fs.PathError{Op: "statfs", Path: parent, Err: err}
	}
	if st.Flags&unix.ST_RDONLY != 0 {
		return &RemovalError{Path: name, Reason: "its filesystem is mounted read-only"}
	}
	if err := checkDirAccess(parent); err != nil {
		return err
	}
	return canRemoveTree(name)
}

// canRemoveTree checks path and, for a folder, everything below it.
func canRemoveTree(path string) error {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_TYPE|unix.STATX_MODE, &stx); err != nil {
		return &fs.PathError{Op: "statx", Path: path, Err: err}
	}
	switch stx.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return nil // a link goes with its folder; its target is not ours
	case unix.S_IFDIR:
	default:
		return checkAttributes(path, &stx)
	}
	if err := checkAttributes(path, &stx); err != nil {
		return err // before access(2), which fails on an immutable folder too but says less
	}
	if err := unix.Access(path, unix.W_OK|unix.X_OK); err != nil {
		return dirAccessError(path, err)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := canRemoveTree(filepath.Join(path, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// checkAttributes fails when the entry statx described has the immutable
// or append-only attribute; where the filesystem does not report them
// through statx, it asks with checkFlags.
func checkAttributes(path string, stx *unix.Statx_t) error {
	const both = unix.STATX_ATTR_IMMUTABLE | unix.STATX_ATTR_APPEND
	if stx.Attributes_mask&both != both {
		return checkFlags(path)
	}
	switch {
	case stx.Attributes&unix.STATX_ATTR_IMMUTABLE != 0:
		return &RemovalError{Path: path, Reason: "it is immutable (chattr +i)", Err: fs.ErrPermission}
	case stx.Attributes&unix.STATX_ATTR_APPEND != 0:
		return &RemovalError{Path: path, Reason: "it is append-only (chattr +a)", Err: fs.ErrPermission}
	}
	return nil
}

// checkDirAccess checks that entries of folder dir can be removed: write
// and search permission, and no immutable or append-only attribute.
func checkDirAccess(dir string) error {
	if err := checkFlags(dir); err != nil {
		return err
	}
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		return dirAccessError(dir, err)
	}
	return nil
}

func dirAccessError(dir string, err error) error {
	reason := "no permission to remove entries from it"
	if err == unix.EROFS {
		reason = "its filesystem is read-only"
	}
	return &RemovalError{Path: dir, Reason: reason, Err: err}
}

// checkFlags fails when path has the immutable or append-only attribute.
func checkFlags(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		if err == unix.ELOOP || err == unix.ENXIO || err == unix.EOPNOTSUPP {
			return nil // a link or a special file: no attributes to read
		}
		return &RemovalError{Path: path, Reason: "cannot read its attributes", Err: err}
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		return nil // ENOTTY, EOPNOTSUPP, EINVAL: the filesystem has no such attributes
	}
	switch {
	case flags&fsImmutableFL != 0:
		return &RemovalError{Path: path, Reason: "it is immutable (chattr +i)", Err: fs.ErrPermission}
	case flags&fsAppendFL != 0:
		return &RemovalError{Path: path, Reason: "it is append-only (chattr +a)", Err: fs.ErrPermission}
	}
	return nil
}

// SetImmutable sets or clears the immutable attribute of path (chattr
// +i/-i), as root on a filesystem that has the attribute. Tests use it.
func SetImmutable(path string, on bool) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "chattr", Path: path, Err: err}
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		return &fs.PathError{Op: "chattr", Path: path, Err: err}
	}
	if on {
		flags |= fsImmutableFL
	} else {
		flags &^= fsImmutableFL
	}
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags)); err != nil {
		return &fs.PathError{Op: "chattr", Path: path, Err: fmt.Errorf("set flags %#x: %w", flags, err)}
	}
	return nil
}

// openFile opens a regular file as os.OpenFile does, in two system calls
// instead of six: os.OpenFile makes every file non-blocking, offers it to
// the network poller (which refuses regular files on Linux) and makes it
// blocking again; the package files the store and the relocation engine
// open are regular files, so open(2) and os.NewFile do.
func openFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	for {
		fd, err := unix.Open(name, flag|unix.O_CLOEXEC|unix.O_LARGEFILE, uint32(perm.Perm()))
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return os.NewFile(uintptr(fd), name), nil
	}
}
