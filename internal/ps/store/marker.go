package store

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/wharf-project/wharf/internal/ps/durable"
)

// Names inside a store root.
const (
	MarkerName = ".wharf-store" // marks the root as a Wharf store of this PS
	TempDir    = ".wharf-tmp"   // packages being downloaded: TempDir/<id>
	TrashDir   = ".wharf-trash" // folders being removed
)

// Marker is the content of a root's marker file.
type Marker struct {
	Server  string    `json:"server"`
	Created time.Time `json:"created"`
}

// HasMarker reports whether root holds a marker file. An error other than
// "does not exist" (permission, I/O) counts as no marker: the root cannot be
// trusted then either.
func HasMarker(root string) (bool, error) {
	fi, err := os.Stat(filepath.Join(root, MarkerName))
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check store marker in %s: %w", root, err)
	}
	if !fi.Mode().IsRegular() {
		return false, fmt.Errorf("check store marker in %s: %s is not a file", root, MarkerName)
	}
	return true, nil
}

// WriteMarker creates root when missing and writes its marker naming the
// server, durably.
func WriteMarker(root, server string, now time.Time) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("create store root %s: %w", root, err)
	}
	data, _ := json.Marshal(Marker{Server: server, Created: now.UTC()})
	if err := durable.WriteFile(filepath.Join(root, MarkerName), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("mark store root: %w", err)
	}
	if err := durable.SyncDir(filepath.Dir(root)); err != nil {
		return fmt.Errorf("mark store root: %w", err)
	}
	return nil
}
