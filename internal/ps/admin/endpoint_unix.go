//go:build !windows

package admin

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// SocketPath returns the admin endpoint of the install dir: the Unix
// socket <install dir>/admin.sock, readable by the PS's own user only.
func SocketPath(installDir string) string { return filepath.Join(installDir, SocketName) }

// listen makes the socket at path, removing one a PS that is gone left.
func listen(path string) (net.Listener, error) {
	if _, err := os.Lstat(path); err == nil {
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale admin socket %s: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on admin socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("restrict admin socket %s: %w", path, err)
	}
	return ln, nil
}

// dial connects to the socket at path; timeout 0 leaves it to ctx.
func dial(ctx context.Context, path string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return d.DialContext(ctx, "unix", path)
}
