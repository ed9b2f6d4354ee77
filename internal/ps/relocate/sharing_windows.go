package relocate

import (
	"errors"

	"golang.org/x/sys/windows"
)

// isSharingViolation reports a file held open by another process.
func isSharingViolation(err error) bool {
	return errors.Is(err, windows.ERROR_SHARING_VIOLATION) || errors.Is(err, windows.ERROR_LOCK_VIOLATION)
}
