//go:build !windows

package serve

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// openIn opens rel below dir without leaving it; a missing dir is
// errFolderMissing (which matches os.ErrNotExist). The folder is open only
// while the file is being opened; a moved folder takes the open file along.
func openIn(dir, rel string) (*os.File, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %w", errFolderMissing, err)
		}
		return nil, err
	}
	defer root.Close()
	return root.Open(filepath.FromSlash(rel))
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
