package wharf

import (
	"errors"
	"fmt"
)

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
	ErrConflict     = errors.New("changed concurrently")
)

// Errorf formats an error of the given kind whose message is just the
// formatted text (the kind's own words are not appended). %w in format
// wraps as with fmt.Errorf.
func Errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, err: fmt.Errorf(format, args...)}
}

type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }
