// Package durable holds the few file operations the Package Server needs to
// survive a crash at any instant: write a small file atomically, make a
// rename durable by syncing the folder that holds it, and remove a folder
// tree by first renaming it out of the way.
//
// The protocol they serve: bytes are written under a temporary name, fsynced,
// renamed into place, and the parent folder is fsynced; removal renames
// first, so a crash leaves a whole folder or a trash entry, never a half
// folder under a real name.
package durable

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// SyncDir makes the entries of folder dir (creations, renames, removals)
// durable. On Windows, where folders cannot be fsynced, it does nothing: NTFS
// journals its metadata.
func SyncDir(dir string) error {
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}

// WriteFile writes data to path atomically with permissions perm: a
// temporary file in the same folder is written, fsynced and renamed over
// path, and the folder is fsynced. A reader sees the old content or the new,
// never a part.
func WriteFile(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
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

// RemoveAll removes the folder tree at path crash-safely: it first renames
// path into trash (a folder on the same volume, created when missing) under
// a unique name and syncs both folders, then removes the renamed tree. A
// missing path is not an error. Whatever is left in trash after a crash is
// garbage that Empty removes.
func RemoveAll(path, trash string) error {
	if _, err := os.Lstat(path); os.IsNotExist(err) {
		return nil
	}
	if err := os.MkdirAll(trash, 0o755); err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	dst := filepath.Join(trash, filepath.Base(path)+"-"+hex.EncodeToString(b[:]))
	if err := os.Rename(path, dst); err != nil {
		return fmt.Errorf("remove %s: move to %s: %w", path, trash, err)
	}
	if err := SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	if err := os.RemoveAll(dst); err != nil {
		return fmt.Errorf("remove %s: %w", dst, err)
	}
	return nil
}

// Empty removes everything inside the trash folder; a missing folder is not
// an error.
func Empty(trash string) error {
	entries, err := os.ReadDir(trash)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("empty %s: %w", trash, err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(trash, e.Name())); err != nil {
			return fmt.Errorf("empty %s: %w", trash, err)
		}
	}
	return nil
}
