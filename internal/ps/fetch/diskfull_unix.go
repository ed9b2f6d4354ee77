//go:build unix

package fetch

import (
	"errors"
	"syscall"
)

// diskFull reports whether err says the volume (or the user's quota) is
// full.
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
