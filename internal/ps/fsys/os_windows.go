package fsys

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unicode/utf16"

	"golang.org/x/sys/windows"
)

// Lstat implements [FS]. A junction (a mount-point reparse point, which Go
// reports as irregular) and a symlink both have fs.ModeSymlink set.
func (OS) Lstat(name string) (fs.FileInfo, error) {
	fi, err := os.Lstat(name)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&(fs.ModeIrregular|fs.ModeSymlink) != 0 {
		if _, err := readlink(name); err == nil {
			return linkInfo{fi}, nil
		}
	}
	return fi, nil
}

// linkInfo reports a junction as a link.
type linkInfo struct{ fs.FileInfo }

func (l linkInfo) Mode() fs.FileMode { return l.FileInfo.Mode()&^fs.ModeType | fs.ModeSymlink }
func (l linkInfo) IsDir() bool       { return false }

// Rename implements [FS] with MoveFileEx without MOVEFILE_REPLACE_EXISTING
// (so it never replaces) and without MOVEFILE_COPY_ALLOWED (so a move to
// another volume fails with ERROR_NOT_SAME_DEVICE, reported as
// ErrCrossDevice).
func (OS) Rename(oldname, newname string) error {
	from, err := windows.UTF16PtrFromString(longPath(oldname))
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	to, err := windows.UTF16PtrFromString(longPath(newname))
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	err = windows.MoveFileEx(from, to, windows.MOVEFILE_WRITE_THROUGH)
	switch {
	case err == nil:
		return nil
	case err == windows.ERROR_NOT_SAME_DEVICE:
		err = WithKind(ErrCrossDevice, err)
	}
	return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
}

// Exchange implements [FS]: Windows has no atomic exchange of two names,
// so it always fails with errors.ErrUnsupported.
func (OS) Exchange(a, b string) error {
	return &os.LinkError{Op: "exchange", Old: a, New: b, Err: errors.ErrUnsupported}
}

// RemoveAll implements [FS]. It walks the tree itself so that a junction
// is removed as a link and never followed into the folder it points to.
func (o OS) RemoveAll(name string) error { return RemoveAllVia(o, name) }

// Symlink implements [FS] with a junction (an NTFS mount-point reparse
// point), which unlike a symbolic link needs no privilege: an empty folder
// is created at link and FSCTL_SET_REPARSE_POINT makes it point to target,
// an absolute path on a local volume.
func (OS) Symlink(target, link string) error {
	if !filepath.IsAbs(target) {
		return &os.LinkError{Op: "junction", Old: target, New: link, Err: errors.New("target must be an absolute path")}
	}
	if err := os.Mkdir(link, 0o755); err != nil {
		return err
	}
	if err := setJunction(link, target); err != nil {
		_ = os.Remove(link)
		return &os.LinkError{Op: "junction", Old: target, New: link, Err: err}
	}
	return nil
}

func setJunction(link, target string) error {
	subst := utf16.Encode([]rune(`\??\` + filepath.Clean(target)))
	print := utf16.Encode([]rune(filepath.Clean(target)))
	// REPARSE_DATA_BUFFER with a MountPointReparseBuffer: tag, data
	// length, reserved, then four uint16 offsets and lengths (in bytes),
	// then the substitute and print names, each NUL-terminated.
	pathBytes := (len(subst) + 1 + len(print) + 1) * 2
	buf := make([]byte, 8+8+pathBytes)
	le := binary.LittleEndian
	le.PutUint32(buf[0:], windows.IO_REPARSE_TAG_MOUNT_POINT)
	le.PutUint16(buf[4:], uint16(8+pathBytes))
	le.PutUint16(buf[8:], 0)                         // SubstituteNameOffset
	le.PutUint16(buf[10:], uint16(len(subst)*2))     // SubstituteNameLength
	le.PutUint16(buf[12:], uint16((len(subst)+1)*2)) // PrintNameOffset
	le.PutUint16(buf[14:], uint16(len(print)*2))     // PrintNameLength
	off := 16
	for _, c := range subst {
		le.PutUint16(buf[off:], c)
		off += 2
	}
	off += 2
	for _, c := range print {
		le.PutUint16(buf[off:], c)
		off += 2
	}
	p, err := windows.UTF16PtrFromString(longPath(link))
	if err != nil {
		return err
	}
	h, err := windows.CreateFile(p, windows.GENERIC_WRITE, 0, nil, windows.OPEN_EXISTING,
		windows.FILE_FLAG_OPEN_REPARSE_POINT|windows.FILE_FLAG_BACKUP_SEMANTICS, 0)
	if err != nil {
		return err
	}
	defer windows.CloseHandle(h)
	var n uint32
	if err := windows.DeviceIoControl(h, windows.FSCTL_SET_REPARSE_POINT, &buf[0], uint32(len(buf)), nil, 0, &n, nil); err != nil {
		return fmt.Errorf("FSCTL_SET_REPARSE_POINT: %w", err)
	}
	return nil
}

// Readlink implements [FS]; for a junction it returns the target folder.
func (OS) Readlink(name string) (string, error) {
	t, err := readlink(name)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	return t, nil
}

func readlink(name string) (string, error) {
	t, err := os.Readlink(name)
	if err != nil {
		return "", underlying(err)
	}
	if rest, ok := strings.CutPrefix(t, `\??\`); ok {
		t = rest
	}
	return t, nil
}

func underlying(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// CanRemove implements [FS]: no file or folder in the tree may have the
// read-only attribute, and each must open with DELETE access — which fails
// with a sharing violation while any process holds a handle to it that does
// not share delete (FILE_SHARE_DELETE): an antivirus, an indexer, an
// editor. Handles that share delete, as the Package Server's own serving
// opens files (serve.openIn), do not count: they never stop a removal or a
// rename. The probe itself shares everything, so it disturbs no one.
func (o OS) CanRemove(name string) error {
	return WalkLstat(o, name, func(path string, fi fs.FileInfo) error {
		if a, ok := fi.Sys().(*syscall.Win32FileAttributeData); ok && a.FileAttributes&windows.FILE_ATTRIBUTE_READONLY != 0 {
			return &RemovalError{Path: path, Reason: "it has the read-only attribute", Err: fs.ErrPermission}
		}
		p, err := windows.UTF16PtrFromString(longPath(path))
		if err != nil {
			return err
		}
		h, err := windows.CreateFile(p, windows.DELETE,
			windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, nil, windows.OPEN_EXISTING,
			windows.FILE_FLAG_OPEN_REPARSE_POINT|windows.FILE_FLAG_BACKUP_SEMANTICS, 0)
		if err != nil {
			reason := "it cannot be opened for deletion"
			if err == windows.ERROR_SHARING_VIOLATION {
				reason = "another process holds it open"
			} else if err == windows.ERROR_ACCESS_DENIED {
				reason = "access denied"
			}
			return &RemovalError{Path: path, Reason: reason, Err: err}
		}
		windows.CloseHandle(h)
		return nil
	})
}

// LongPath turns an absolute path longer than the classic MAX_PATH into an
// extended-length one (\\?\C:\... or \\?\UNC\server\share\...) for Win32
// calls made directly; package os does the same for its own.
func LongPath(p string) string { return longPath(p) }

func longPath(p string) string {
	if len(p) < 248 || strings.HasPrefix(p, `\\?\`) || !filepath.IsAbs(p) {
		return p
	}
	p = filepath.Clean(p)
	if rest, ok := strings.CutPrefix(p, `\\`); ok {
		return `\\?\UNC\` + rest
	}
	return `\\?\` + p
}

// openFile is os.OpenFile.
func openFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	return os.OpenFile(name, flag, perm)
}
