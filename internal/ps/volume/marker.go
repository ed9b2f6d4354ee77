package volume

import (
	"errors"
	"io/fs"
	"os"
)

// markerPresent reports whether the marker exists. A marker that cannot be
// checked (permission denied) counts as present: the administrator's wish to
// exclude a drive wins over a guess.
func markerPresent(path string) bool {
	_, err := os.Lstat(path)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}
