package fsys

import (
	"io/fs"
	"os"
	"path/filepath"

	"github.com/wharf-project/wharf/internal/durable"
)

// OS is the running system's file system. The zero value is ready to use.
// Behaviour that differs between systems is documented on each method; see
// also the package doc.
type OS struct{}

var _ FS = OS{}

// Open implements [FS].
func (OS) Open(name string) (File, error) { return openFile(name, os.O_RDONLY, 0) }

// Create implements [FS] (O_CREATE|O_EXCL).
func (OS) Create(name string, perm fs.FileMode) (File, error) {
	return openFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
}

// Append implements [FS] (O_RDWR|O_CREATE|O_APPEND).
func (OS) Append(name string, perm fs.FileMode) (File, error) {
	return openFile(name, os.O_RDWR|os.O_CREATE|os.O_APPEND, perm)
}

// Mkdir implements [FS].
func (OS) Mkdir(name string, perm fs.FileMode) error { return os.Mkdir(name, perm) }

// ReadDir implements [FS].
func (OS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }

// Stat implements [FS].
func (OS) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }

// SyncDir implements [FS] with durable.SyncDir: fsync(2) of the folder on
// Unix; on Windows, which cannot fsync a folder (NTFS and ReFS journal
// their metadata, so a completed rename or creation survives a crash), a
// check that the folder exists.
func (OS) SyncDir(name string) error { return durable.SyncDir(name) }

// Remove implements [FS].
func (OS) Remove(name string) error { return os.Remove(name) }

func join(dir, name string) string { return filepath.Join(dir, name) }
