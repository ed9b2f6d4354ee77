package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/Microsoft/go-winio"
)

// SocketPath returns the admin endpoint of the install dir: on Windows a
// named pipe, \\.\pipe\wharf-ps-<hash of the install dir>, so it works on
// every Windows the PS runs on (AF_UNIX sockets need Windows 10 1803) and
// two PSs on one machine (two install dirs) have two endpoints.
func SocketPath(installDir string) string {
	abs, err := filepath.Abs(installDir)
	if err != nil {
		abs = installDir
	}
	sum := sha256.Sum256([]byte(strings.ToLower(filepath.Clean(abs))))
	return `\\.\pipe\wharf-ps-` + hex.EncodeToString(sum[:8])
}

// pipeSecurity lets SYSTEM, the Administrators and the pipe's owner (the
// PS's account) in, and nobody else (SDDL, protected from inheritance).
const pipeSecurity = "D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;OW)"

// listen makes the named pipe path.
func listen(path string) (net.Listener, error) {
	ln, err := winio.ListenPipe(path, &winio.PipeConfig{SecurityDescriptor: pipeSecurity})
	if err != nil {
		return nil, fmt.Errorf("listen on admin pipe %s: %w", path, err)
	}
	return ln, nil
}

// dial connects to the named pipe path; timeout 0 leaves it to ctx.
func dial(ctx context.Context, path string, timeout time.Duration) (net.Conn, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return winio.DialPipeContext(ctx, path)
}
