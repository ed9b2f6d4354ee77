package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/wharf-project/wharf/internal/sdnotify"
)

// serveWithOps runs a server until e.ctx ends: serve, and, with opsLn, the
// operations listener (metrics and health) beside it; the first to fail
// stops the other. It tells systemd the service is ready (READY=1) once
// ready is closed (at once when nil: the listeners are bound already) and
// that it stops (STOPPING=1) when the context ends.
func serveWithOps(e *env, log *slog.Logger, serve func(context.Context) error, opsLn net.Listener,
	serveOps func(context.Context, net.Listener) error, ready <-chan struct{}) error {
	ctx, cancel := context.WithCancelCause(e.ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	var serveErr, opsErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		serveErr = serve(ctx)
		cancel(errors.New("server stopped"))
	}()
	if opsLn != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if opsErr = serveOps(ctx, opsLn); opsErr != nil {
				cancel(opsErr)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if ready != nil {
			select {
			case <-ready:
			case <-ctx.Done():
				return
			}
		}
		if sent, err := sdnotify.Ready(); err != nil {
			log.Warn("tell systemd the service is ready", "err", err)
		} else if sent {
			log.Info("told systemd the service is ready")
		}
		<-ctx.Done()
		if _, err := sdnotify.Stopping(); err != nil {
			log.Warn("tell systemd the service stops", "err", err)
		}
	}()
	wg.Wait()
	if serveErr != nil {
		return serveErr
	}
	if opsErr != nil {
		return fmt.Errorf("metrics listener: %w", opsErr)
	}
	return nil
}
