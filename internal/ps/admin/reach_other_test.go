//go:build !windows

package admin_test

import (
	"context"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/ps/admin"
)

// reachable checks that a client gets through the socket at sock.
func reachable(t *testing.T, sock string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := admin.NewClient(sock).Status(ctx); err != nil {
		t.Fatalf("the admin endpoint %s does not answer: %v", sock, err)
	}
}
