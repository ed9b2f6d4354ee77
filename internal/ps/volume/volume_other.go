//go:build !linux && !windows

package volume

import (
	"errors"
	"fmt"
)

// OS stands for the running system where Wharf has no volume support (it
// runs Package Servers on Linux and Windows only); every method fails with
// errors.ErrUnsupported. It lets the module build on developer machines.
type OS struct{}

// New returns the facts of the running system.
func New() *OS { return &OS{} }

var _ Facts = (*OS)(nil)

// Stat implements [Facts]; it always fails.
func (o *OS) Stat(path string) (Info, error) {
	return Info{}, fmt.Errorf("stat volume of %s: %w", path, errors.ErrUnsupported)
}

// Volumes implements [Facts]; it always fails.
func (o *OS) Volumes() ([]Info, error) {
	return nil, fmt.Errorf("list volumes: %w", errors.ErrUnsupported)
}
