package serve

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/wharf-project/wharf/internal/ps/fsys"
)

// shareAll lets every other handle read, write, rename and delete: a file
// being served never stops a relocation moving or removing its package.
const shareAll = windows.FILE_SHARE_READ | windows.FILE_SHARE_WRITE | windows.FILE_SHARE_DELETE

// folders and files open package files on Windows; they keep nothing open
// between requests (a handle held there would get in the way of a
// relocation's rename more often than it saves).
type (
	folders struct{}
	files   struct{}
)

func newFolders() *folders { return &folders{} }
func newFiles() *files     { return &files{} }

// Close does nothing: nothing is kept open on Windows.
func (h *Handler) Close() error { return nil }

// open returns file rel of dir for one request; see opened.
func (h *Handler) open(dir, rel string, _ int64) (opened, error) {
	f, err := openIn(dir, rel)
	if err != nil {
		return opened{}, err
	}
	size, regular, err := statOpen(f)
	if err != nil {
		f.Close()
		return opened{}, err
	}
	return opened{f: f, size: size, regular: regular, links: 1, release: func() { f.Close() }}, nil
}

// openIn opens rel below dir without leaving it; a missing dir is
// errFolderMissing (which matches os.ErrNotExist).
//
// On Windows an os.Root would hold the package folder open without
// FILE_SHARE_DELETE while the file is opened, and a relocation renaming the
// folder in that instant would fail with a sharing violation (it did, under
// Wine, in serve.TestServingFollowsAMovingPackage). So the folder is opened
// sharing everything, and rel is walked from it one element at a time with
// NtCreateFile relative to the folder's handle, as os.Root does; a reparse
// point (junction, symbolic link) on the way is refused, as nothing in a
// package is ever one. The file is opened sharing everything too (so
// fsys.OS.CanRemove does not count it as held), and stays readable when its
// name moves or goes.
func openIn(dir, rel string) (*os.File, error) {
	name := filepath.Join(dir, filepath.FromSlash(rel))
	p, err := windows.UTF16PtrFromString(fsys.LongPath(dir))
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	root, err := windows.CreateFile(p, windows.FILE_LIST_DIRECTORY|windows.FILE_TRAVERSE|windows.SYNCHRONIZE,
		shareAll, nil, windows.OPEN_EXISTING, windows.FILE_FLAG_BACKUP_SEMANTICS, 0)
	if err != nil {
		perr := &fs.PathError{Op: "open", Path: dir, Err: err}
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %w", errFolderMissing, perr)
		}
		return nil, perr
	}
	defer windows.CloseHandle(root)

	parts := strings.Split(rel, "/")
	h := root
	for i, part := range parts {
		last := i == len(parts)-1
		access := uint32(windows.FILE_TRAVERSE | windows.FILE_READ_ATTRIBUTES | windows.SYNCHRONIZE)
		options := uint32(windows.FILE_DIRECTORY_FILE)
		if last {
			access, options = windows.FILE_GENERIC_READ, windows.FILE_NON_DIRECTORY_FILE
		}
		next, err := openAt(h, part, access, options|windows.FILE_SYNCHRONOUS_IO_NONALERT|windows.FILE_OPEN_REPARSE_POINT)
		if h != root {
			windows.CloseHandle(h)
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		// FileAttributeTagInfo, not GetFileInformationByHandle: that one
		// also asks for the file's name, which Wine fails to give
		// (ERROR_INVALID_HANDLE) when a relocation renamed the folder just
		// after the open.
		var info struct{ FileAttributes, ReparseTag uint32 }
		if err := windows.GetFileInformationByHandleEx(next, windows.FileAttributeTagInfo,
			(*byte)(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
			windows.CloseHandle(next)
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		if info.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0 {
			windows.CloseHandle(next)
			return nil, &fs.PathError{Op: "open", Path: name,
				Err: fmt.Errorf("%s is a link (reparse point), which no package holds", strings.Join(parts[:i+1], "/"))}
		}
		h = next
	}
	return os.NewFile(uintptr(h), name), nil
}

// openAt opens name in the folder of handle dir (NtCreateFile with
// RootDirectory), sharing everything.
func openAt(dir windows.Handle, name string, access, options uint32) (windows.Handle, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `\/:`) {
		return 0, fmt.Errorf("invalid path element %q", name)
	}
	objName, err := windows.NewNTUnicodeString(name)
	if err != nil {
		return 0, err
	}
	oa := &windows.OBJECT_ATTRIBUTES{RootDirectory: dir, ObjectName: objName}
	oa.Length = uint32(unsafe.Sizeof(*oa))
	var h windows.Handle
	var iosb windows.IO_STATUS_BLOCK
	err = windows.NtCreateFile(&h, access, oa, &iosb, nil, 0, shareAll, windows.FILE_OPEN, options, 0, 0)
	if err != nil {
		var st windows.NTStatus
		if errors.As(err, &st) {
			return 0, st.Errno()
		}
		return 0, err
	}
	return h, nil
}

// statOpen returns the size of the open file and whether it is a regular
// file, asking the handle only (FileStandardInfo): os.File.Stat asks for
// the file's name too, which Wine fails to give (ERROR_INVALID_HANDLE) once
// a relocation renamed the package's folder after the open.
func statOpen(f *os.File) (size int64, regular bool, err error) {
	var info struct { // FILE_STANDARD_INFO
		AllocationSize, EndOfFile int64
		NumberOfLinks             uint32
		DeletePending, Directory  bool
	}
	if err := windows.GetFileInformationByHandleEx(windows.Handle(f.Fd()), windows.FileStandardInfo,
		(*byte)(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		return 0, false, &fs.PathError{Op: "stat", Path: f.Name(), Err: err}
	}
	return info.EndOfFile, !info.Directory, nil
}
