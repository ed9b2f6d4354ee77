package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/wharf-project/wharf/internal/wharf"
)

// StatusCanceled is the status logged for a request whose client went
// away; nobody reads it.
const StatusCanceled = 499

// HTTPStatus maps an error to the HTTP status that answers it, by its kind
// (package wharf). It is the one mapping from kinds to statuses: the NS API
// and its console answer with it, and ErrorKind maps back. An error of no
// known kind is a failure of the server: 500.
func HTTPStatus(err error) int {
	var mb *http.MaxBytesError
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &mb), errors.Is(err, wharf.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, wharf.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, wharf.ErrExists), errors.Is(err, wharf.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, wharf.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, wharf.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, wharf.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, wharf.ErrNoSpace):
		return http.StatusInsufficientStorage
	case errors.Is(err, context.Canceled):
		return StatusCanceled
	}
	return http.StatusInternalServerError
}

// ErrorKind maps an HTTP error status back to the error kind HTTPStatus
// gives it (409 reads as wharf.ErrExists), or nil for a status of no kind.
func ErrorKind(status int) error {
	switch status {
	case http.StatusNotFound:
		return wharf.ErrNotFound
	case http.StatusConflict:
		return wharf.ErrExists
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return wharf.ErrInvalid
	case http.StatusUnauthorized:
		return wharf.ErrUnauthorized
	case http.StatusForbidden:
		return wharf.ErrForbidden
	case http.StatusRequestEntityTooLarge:
		return wharf.ErrTooLarge
	case http.StatusInsufficientStorage:
		return wharf.ErrNoSpace
	}
	return nil
}
