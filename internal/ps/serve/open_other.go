//go:build !windows

package serve

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Open handles kept between requests (Linux): the package folders being
// served, as os.Roots, so a request opens one file instead of its folder
// too; and small package files, as nginx's open_file_cache does, so a
// request for one costs an fstat and a pread instead of an open, fcntl,
// fstat, read and close. Sharing is safe because a package's files never
// change: a folder or file renamed away (a relocation on one volume) still
// holds the same bytes; a folder removed or replaced gives ENOENT, and a
// file removed (its package moved to another volume, or discarded as
// damaged) has no link left, which every request's fstat sees — either
// way the entry goes and the path is opened afresh. Only ReadAt and Stat
// are used on a shared file, never its offset. Handles idle for a second
// are closed, so a volume nobody downloads from can be unmounted a moment
// later; Handler.Close closes them all.
type (
	folders = openCache[*os.Root]
	files   = openCache[*os.File]
)

// Bounds of the handles kept: never the whole store.
const (
	maxOpenFolders = 1024
	maxOpenFiles   = 4096
	openIdle       = time.Second
)

func newFolders() *folders { return newOpenCache[*os.Root](maxOpenFolders, openIdle) }
func newFiles() *files     { return newOpenCache[*os.File](maxOpenFiles, openIdle) }

// openIn opens rel below dir without leaving it; a missing dir is
// errFolderMissing (which matches os.ErrNotExist).
func (h *Handler) openIn(dir, rel string) (*os.File, error) {
	c, name := h.folders, filepath.FromSlash(rel)
	for fresh := false; ; fresh = true {
		fd := c.get(dir)
		if fd == nil {
			root, err := os.OpenRoot(dir)
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return nil, fmt.Errorf("%w: %w", errFolderMissing, err)
				}
				return nil, err
			}
			fd = c.add(dir, root)
		}
		f, err := fd.v.Open(name)
		c.put(fd)
		if err == nil || fresh || !errors.Is(err, os.ErrNotExist) {
			return f, err
		}
		c.drop(fd) // the folder may be gone or replaced: look again
	}
}

// open returns file rel of dir for one request; see opened. A small file
// (size, from the index, at most smallFile) is shared: kept open between
// requests.
func (h *Handler) open(dir, rel string, size int64) (opened, error) {
	if size > smallFile {
		f, err := h.openIn(dir, rel)
		if err != nil {
			return opened{}, err
		}
		return statOpened(f, false, func() { f.Close() })
	}
	c, key := h.files, dir+"\x00"+rel
	for fresh := false; ; fresh = true {
		e := c.get(key)
		if e == nil {
			f, err := h.openIn(dir, rel)
			if err != nil {
				return opened{}, err
			}
			e = c.add(key, f)
		}
		o, err := statOpened(e.v, true, func() { c.put(e) })
		if err == nil && o.links == 0 && !fresh {
			o.release()
			c.drop(e) // removed since it was opened: look at the path again
			continue
		}
		return o, err
	}
}

// Close closes the handles kept open; the handler may still serve, but
// keeps nothing open any more.
func (h *Handler) Close() error {
	h.files.close()
	h.folders.close()
	return nil
}

// statOpened describes f for a request.
func statOpened(f *os.File, shared bool, release func()) (opened, error) {
	fi, err := f.Stat()
	if err != nil {
		release()
		return opened{}, err
	}
	o := opened{f: f, size: fi.Size(), regular: fi.Mode().IsRegular(), shared: shared, links: 1, release: release}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		o.links = uint64(st.Nlink)
	}
	return o, nil
}
