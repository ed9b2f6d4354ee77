package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/wharf-project/wharf/internal/wharf"
)

func TestHTTPStatusAndBack(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		back   error // ErrorKind(status)
	}{
		{"not found", fmt.Errorf("package x: %w", wharf.ErrNotFound), http.StatusNotFound, wharf.ErrNotFound},
		{"exists", wharf.Errorf(wharf.ErrExists, "taken"), http.StatusConflict, wharf.ErrExists},
		{"conflict", wharf.ErrConflict, http.StatusConflict, wharf.ErrExists},
		{"invalid", wharf.Errorf(wharf.ErrInvalid, "bad"), http.StatusBadRequest, wharf.ErrInvalid},
		{"unauthorized", wharf.ErrUnauthorized, http.StatusUnauthorized, wharf.ErrUnauthorized},
		{"forbidden", wharf.ErrForbidden, http.StatusForbidden, wharf.ErrForbidden},
		{"too large", wharf.ErrTooLarge, http.StatusRequestEntityTooLarge, wharf.ErrTooLarge},
		{"max bytes", fmt.Errorf("read: %w", &http.MaxBytesError{Limit: 1}), http.StatusRequestEntityTooLarge, wharf.ErrTooLarge},
		{"no space", fmt.Errorf("put blob: %w", wharf.ErrNoSpace), http.StatusInsufficientStorage, wharf.ErrNoSpace},
		{"canceled", fmt.Errorf("query: %w", context.Canceled), StatusCanceled, nil},
		{"other", errors.New("disk on fire"), http.StatusInternalServerError, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HTTPStatus(tt.err); got != tt.status {
				t.Fatalf("HTTPStatus(%v) = %d, want %d", tt.err, got, tt.status)
			}
			if got := ErrorKind(tt.status); got != tt.back {
				t.Fatalf("ErrorKind(%d) = %v, want %v", tt.status, got, tt.back)
			}
		})
	}
}
