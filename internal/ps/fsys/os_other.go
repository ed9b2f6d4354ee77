//go:build !linux && !windows

package fsys

import (
	"errors"
	"io/fs"
	"os"
)

// Wharf runs Package Servers on Linux and Windows; on other systems OS is a
// portable fallback so the module builds and tests run on developer
// machines. Rename checks for newname before renaming (racy against other
// processes), Exchange is unsupported and CanRemove only checks that the
// tree can be listed.

// Lstat implements [FS].
func (OS) Lstat(name string) (fs.FileInfo, error) { return os.Lstat(name) }

// Rename implements [FS] with a check for newname before os.Rename.
func (OS) Rename(oldname, newname string) error {
	if _, err := os.Lstat(newname); err == nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: fs.ErrExist}
	}
	return os.Rename(oldname, newname)
}

// Exchange implements [FS]; it is unsupported here.
func (OS) Exchange(a, b string) error {
	return &os.LinkError{Op: "exchange", Old: a, New: b, Err: errors.ErrUnsupported}
}

// RemoveAll implements [FS].
func (OS) RemoveAll(name string) error { return os.RemoveAll(name) }

// Symlink implements [FS].
func (OS) Symlink(target, link string) error { return os.Symlink(target, link) }

// Readlink implements [FS].
func (OS) Readlink(name string) (string, error) { return os.Readlink(name) }

// CanRemove implements [FS]: it only walks the tree.
func (o OS) CanRemove(name string) error {
	return WalkLstat(o, name, func(string, fs.FileInfo) error { return nil })
}

// openFile is os.OpenFile.
func openFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	return os.OpenFile(name, flag, perm)
}
