package wharf

import "errors"

// Error kinds. Code that must decide what to do about an error (answer 404 or
// 409, retry or give up) tests for one of these with errors.Is; the error's
// text says what failed and on what. Wrap them with context:
//
//	fmt.Errorf("package %s: %w", id, wharf.ErrNotFound)
var (
	ErrNotFound     = errors.New("not found")
	ErrExists       = errors.New("already exists")
	ErrInvalid      = errors.New("invalid")
	ErrUnauthorized = errors.New("not authenticated")
	ErrForbidden    = errors.New("forbidden")
	ErrNoSpace      = errors.New("not enough space")
	ErrTooLarge     = errors.New("too large")
)
