package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharf-project/wharf/internal/httpguard"
	"github.com/wharf-project/wharf/internal/ps"
	"github.com/wharf-project/wharf/internal/ps/admin"
)

func init() { psCommands = append(psCommands, newPSConsoleCmd) }

func newPSConsoleCmd(e *env) *cobra.Command {
	var installDir, addr string
	cmd := &cobra.Command{
		Use:   "console [--install-dir DIR] [--addr 127.0.0.1:0]",
		Short: "Open the local Package Server's status page in a browser",
		Long: `Serve the local Package Server's status page — storage path, store roots,
relocation state and a Retry relocation button — on a loopback port, and print
its URL. The page comes from the admin endpoint (DIR/admin.sock), which only
the PS's own user can open; the URL carries a one-time token, so other users
of the machine cannot use the port. Stop with Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return usageError{fmt.Errorf("--addr %q: %v", addr, err)}
			}
			if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				return usageError{fmt.Errorf("--addr %q: the status page is served on loopback only", addr)}
			}
			sock := admin.SocketPath(installDir)
			if _, err := admin.NewClient(sock).Status(e.ctx); err != nil {
				return fmt.Errorf("no Package Server answers at %s: %w", sock, err)
			}
			b := make([]byte, 16)
			rand.Read(b)
			token := hex.EncodeToString(b)
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", addr, err)
			}
			srv := httpguard.Limits{}.Server(admin.ConsoleProxy(sock, token), e.logger())
			fmt.Fprintf(e.stdio.Out, "Package Server status page: http://%s/?token=%s\n", ln.Addr(), token)
			go func() {
				<-e.ctx.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				srv.Shutdown(ctx)
			}()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&installDir, "install-dir", ps.DefaultInstallDir(), "the Package Server's install dir")
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:0", "loopback address to serve the page on")
	return cmd
}
