// Command wharf is Wharf's single binary: the Notification Server, the
// Package Server, the client and the administrator's CLI. See `wharf help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/wharf-project/wharf/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}
