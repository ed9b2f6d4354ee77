//go:build !windows

package serve

import (
	"container/list"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// folders keeps the package folders being served open, as os.Roots, so a
// request costs one openat of its file instead of opening and closing its
// folder too. A cached folder is only a shortcut to the folder the index
// names: a folder renamed away takes its files along (a package's bytes
// never change), and a folder removed (moved to another volume) or
// replaced gives ENOENT, upon which the entry is dropped and the path
// opened afresh. It holds at most maxOpenFolders folders, least recently
// used going first; a folder in use when it goes is closed by its last user.
type folders struct {
	mu  sync.Mutex
	max int
	m   map[string]*folder
	lru list.List // of *folder, most recently used at the front
}

type folder struct {
	dir     string
	root    *os.Root
	refs    int
	dropped bool
	elem    *list.Element
}

// maxOpenFolders bounds the folders kept open: a few file descriptors per
// package in use, never the whole store.
const maxOpenFolders = 1024

func newFolders() *folders { return &folders{max: maxOpenFolders, m: map[string]*folder{}} }

// openIn opens rel below dir without leaving it; a missing dir is
// errFolderMissing (which matches os.ErrNotExist).
func (c *folders) openIn(dir, rel string) (*os.File, error) {
	name := filepath.FromSlash(rel)
	for fresh := false; ; fresh = true {
		fd, err := c.get(dir)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%w: %w", errFolderMissing, err)
			}
			return nil, err
		}
		f, err := fd.root.Open(name)
		c.put(fd)
		if err == nil || fresh || !errors.Is(err, os.ErrNotExist) {
			return f, err
		}
		c.drop(fd) // the folder may be gone or replaced: look again
	}
}

// get returns the open folder dir, opening it when it is not cached.
func (c *folders) get(dir string) (*folder, error) {
	c.mu.Lock()
	if fd := c.m[dir]; fd != nil {
		fd.refs++
		c.lru.MoveToFront(fd.elem)
		c.mu.Unlock()
		return fd, nil
	}
	c.mu.Unlock()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if fd := c.m[dir]; fd != nil { // opened meanwhile
		root.Close()
		fd.refs++
		c.lru.MoveToFront(fd.elem)
		return fd, nil
	}
	fd := &folder{dir: dir, root: root, refs: 1}
	fd.elem = c.lru.PushFront(fd)
	c.m[dir] = fd
	for c.lru.Len() > c.max {
		c.dropLocked(c.lru.Back().Value.(*folder))
	}
	return fd, nil
}

// put releases a folder get returned.
func (c *folders) put(fd *folder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if fd.refs--; fd.refs == 0 && fd.dropped {
		fd.root.Close()
	}
}

// drop forgets fd; it is closed once nobody uses it.
func (c *folders) drop(fd *folder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(fd)
}

func (c *folders) dropLocked(fd *folder) {
	if fd.dropped {
		return
	}
	fd.dropped = true
	if c.m[fd.dir] == fd {
		delete(c.m, fd.dir)
	}
	c.lru.Remove(fd.elem)
	if fd.refs == 0 {
		fd.root.Close()
	}
}

// statOpen returns the size of the open file and whether it is a regular
// file.
func statOpen(f *os.File) (size int64, regular bool, err error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	return fi.Size(), fi.Mode().IsRegular(), nil
}
