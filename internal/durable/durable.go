// Package durable holds the two file operations every part of Wharf needs
// to survive a crash at any instant: make the entries of a folder durable
// (fsync of the folder, after a rename or creation in it), and write a small
// file atomically (temporary file, fsync, rename, fsync of the folder).
//
// It is the only place that knows how a folder is synced on each OS:
// fsys.OS (the Package Server's file-system seam), the NS's blob store, the
// PS's credential file and `wharf get` all call it. On Windows a folder
// cannot be fsynced without backup privileges; NTFS and ReFS journal their
// metadata, so a completed rename or creation survives a crash, and SyncDir
// only checks that the folder exists.
package durable

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// SyncDir makes the entries of folder dir (creations, renames, removals)
// durable. The error names the folder.
func SyncDir(dir string) error {
	if err := syncDir(dir); err != nil {
		return &fs.PathError{Op: "sync folder", Path: dir, Err: underlying(err)}
	}
	return nil
}

// SyncOpenDir is SyncDir for a folder opened already (through an os.Root,
// say); name is for the error.
func SyncOpenDir(f *os.File, name string) error {
	if err := syncOpenDir(f); err != nil {
		return &fs.PathError{Op: "sync folder", Path: name, Err: underlying(err)}
	}
	return nil
}

// underlying unwraps the *fs.PathError of a failed open or sync, so the
// caller's error names the folder once.
func underlying(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

// WriteFile writes data to path atomically with permissions perm: a
// temporary file in the same folder is written, fsynced and renamed over
// path, and the folder is synced. A reader sees the old content or the new,
// never a part. The temporary file is named .<base>.tmp-<random>; after a
// crash one may be left behind, and the next WriteFile of path removes it.
func WriteFile(path string, data []byte, perm os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	removeStale(dir, "."+base+".tmp-")
	var b [6]byte
	_, _ = rand.Read(b[:])
	tmp := filepath.Join(dir, "."+base+".tmp-"+hex.EncodeToString(b[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil && !isWindows {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return SyncDir(dir)
}

// removeStale removes the temporary files an interrupted WriteFile left in
// dir (best effort: a file that cannot be removed stays, harmless).
func removeStale(dir, prefix string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if len(e.Name()) > len(prefix) && e.Name()[:len(prefix)] == prefix && e.Type().IsRegular() {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
