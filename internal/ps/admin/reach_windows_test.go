package admin_test

import (
	"context"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/ps/admin"
	"github.com/wharf-project/wharf/internal/testenv/winetest"
)

// reachable checks that a client gets through the named pipe at sock within
// a few seconds. Under Wine 8 it does not: the listener's overlapped
// ConnectNamedPipe never completes, so a client's request waits forever
// (seen in this test); the test is then skipped as a Wine gap.
func reachable(t *testing.T, sock string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := admin.NewClient(sock).Status(ctx)
	if err != nil && ctx.Err() != nil && winetest.Version() != "" {
		winetest.SkipGap(t, "ConnectNamedPipe (overlapped, on an I/O completion port: go-winio's pipe listener)",
			"the admin endpoint's named pipe accepts no client: a request through it waits forever")
	}
	if err != nil {
		t.Fatalf("the admin endpoint %s does not answer: %v", sock, err)
	}
}
