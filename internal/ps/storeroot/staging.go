package storeroot

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Staging is a package being assembled in a temporary folder of a root
// (see "Writing a package" in the package doc). Get one with
// [Roots.StageDownload] or [Roots.StageCopy]; its methods are safe for
// concurrent use.
type Staging struct {
	fs   fsys.FS
	area string // <root>/.wharf-tmp or <root>/.wharf-relocate
	dir  string // area/<id>

	mu      sync.Mutex
	folders map[string]bool // folders of the tree below dir, by relative path
}

// StageDownload returns the staging folder of a download of package id into
// root (<root>/.wharf-tmp/<id>). Nothing is created until Open.
func (r *Roots) StageDownload(root, id string) *Staging {
	return r.stage(filepath.Join(root, DownloadDir), id)
}

// StageCopy returns the staging folder of a relocation's copy of package id
// into root (<root>/.wharf-relocate/<id>). Nothing is created until Open.
func (r *Roots) StageCopy(root, id string) *Staging {
	return r.stage(filepath.Join(root, RelocateDir), id)
}

func (r *Roots) stage(area, id string) *Staging {
	return &Staging{fs: r.fs, area: area, dir: filepath.Join(area, id), folders: map[string]bool{}}
}

// Dir returns the staging folder.
func (s *Staging) Dir() string { return s.dir }

// Open makes sure the staging folder exists, creating it (and the
// temporary area of the root, its creation synced) when missing. What an
// earlier attempt left in it is kept, to be resumed.
func (s *Staging) Open() error {
	if err := s.fs.Mkdir(s.area, 0o755); err == nil {
		if err := s.fs.SyncDir(filepath.Dir(s.area)); err != nil {
			return fmt.Errorf("stage package: %w", err)
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("stage package: %w", err)
	}
	if err := s.fs.Mkdir(s.dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("stage package: %w", err)
	}
	return nil
}

// Path returns the staged name of relative path rel (manifest syntax,
// '/'-separated and valid per wharf.ValidateRelPath).
func (s *Staging) Path(rel string) string { return filepath.Join(s.dir, filepath.FromSlash(rel)) }

// Create creates the new file rel in the staging folder, and the folders
// above it when missing.
func (s *Staging) Create(rel string) (fsys.File, error) {
	if err := s.parents(rel); err != nil {
		return nil, err
	}
	return s.fs.Create(s.Path(rel), 0o644)
}

// Append opens file rel of the staging folder for reading and appending,
// creating it (and the folders above it) when missing: a download resumes
// what an earlier attempt wrote.
func (s *Staging) Append(rel string) (fsys.File, error) {
	if err := s.parents(rel); err != nil {
		return nil, err
	}
	return s.fs.Append(s.Path(rel), 0o644)
}

// Remove removes file rel of the staging folder (bytes that turned out
// wrong); a missing file is not an error.
func (s *Staging) Remove(rel string) error {
	if err := s.fs.Remove(s.Path(rel)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// parents creates the folders of the tree above rel that are missing, and
// records every folder above rel, found or made, for SyncFolders.
func (s *Staging) parents(rel string) error {
	if err := wharf.ValidateRelPath(rel); err != nil {
		return err
	}
	dir := ""
	els := strings.Split(rel, "/")
	for _, el := range els[:len(els)-1] {
		if dir == "" {
			dir = el
		} else {
			dir += "/" + el
		}
		s.mu.Lock()
		known := s.folders[dir]
		s.mu.Unlock()
		if known {
			continue
		}
		if err := s.fs.Mkdir(s.Path(dir), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		s.mu.Lock()
		s.folders[dir] = true
		s.mu.Unlock()
	}
	return nil
}

// SyncFolders makes the staged tree's entries durable: every folder below
// the staging folder (those Create and Append went through), deepest
// first, then the staging folder itself and the temporary area holding
// it. The files' content is the caller's to sync (each file as it is
// verified, or the whole volume at once, see fsys.VolumeSyncer).
func (s *Staging) SyncFolders() error {
	s.mu.Lock()
	dirs := make([]string, 0, len(s.folders))
	for d := range s.folders {
		dirs = append(dirs, d)
	}
	s.mu.Unlock()
	slices.SortFunc(dirs, func(a, b string) int { // deepest first, then by name: the same order every time
		if c := strings.Count(b, "/") - strings.Count(a, "/"); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	for _, d := range dirs {
		if err := s.fs.SyncDir(s.Path(d)); err != nil {
			return err
		}
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		return err
	}
	return s.fs.SyncDir(s.area)
}

// Place renames the staged package to dest, its final folder in the same
// root, never replacing anything (an existing dest fails with an error
// matching fs.ErrExist), and syncs the folders on both sides: once Place
// returns, the package is durable under its name.
func (s *Staging) Place(dest string) error {
	if err := s.fs.Rename(s.dir, dest); err != nil {
		return err
	}
	if err := s.fs.SyncDir(filepath.Dir(dest)); err != nil {
		return err
	}
	return s.fs.SyncDir(s.area)
}

// Discard removes the staging folder and what is in it, durably; a
// missing one is not an error.
func (s *Staging) Discard() error {
	if _, err := s.fs.Lstat(s.dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := s.fs.RemoveAll(s.dir); err != nil {
		return err
	}
	return s.fs.SyncDir(s.area)
}
