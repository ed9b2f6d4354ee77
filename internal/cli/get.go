package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/wharf-project/wharf/internal/client"
	"github.com/wharf-project/wharf/internal/wharf"
)

func init() { register(newGetCmd) }

func newGetCmd(e *env) *cobra.Command {
	var (
		dest     string
		parallel int
	)
	cmd := &cobra.Command{
		Use:   "get PACKAGE[@VERSION] --dest DIR",
		Short: "Download a package from its Package Servers",
		Long: `Download every file of a package into DIR from the Package Servers that have
it ready, as the Notification Server lists them (its codebases).

PACKAGE is a package id, or a package name with an optional @VERSION; a name
without a version means the newest package of that name (by the time it was
added to the NS).

Every file is checked against the size and SHA-256 of the package's manifest,
written to a temporary file in DIR/.wharf-get-*/ and renamed into place only
when whole, so DIR never holds a partial or wrong file. Files already in DIR
with the right content are not downloaded again: running the command again
finishes an interrupted download. When a Package Server fails in the middle of
a file, the download goes on from the same byte on the next one.

It needs no admin token: a client token (--token or WHARF_TOKEN, from 'wharf
client-token create') reads any package, and a public package needs no
token at all. --ca FILE trusts the authority that signed the NS's and the
Package Servers' certificates.

A progress bar is drawn on stderr when it is a terminal and --json is not set.
With --json a summary is printed: package, files, bytes, destination and the
bytes received from each Package Server.

EXIT STATUS
  0 when every file is in place, 1 when the download failed, 2 for a wrong
  command line; the reason is one line on stderr.`,
		Example: `  wharf get demo --dest ./demo
  wharf get demo@1.2 --dest /srv/demo --parallel 8
  wharf get 6f1c2d4e-0a1b-4c2d-8e3f-405162738495 --dest ./pkg --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dest == "" {
				return usageError{errors.New("no destination: set --dest DIR")}
			}
			if parallel < 1 {
				return usageError{fmt.Errorf("invalid --parallel %d: want 1 or more", parallel)}
			}
			c, hc, err := e.readClient()
			if err != nil {
				return err
			}
			opt := client.Options{Parallel: parallel, HTTPClient: hc}
			if !e.json {
				opt.Progress = getTerminal(e.stdio.Err)
			}
			if opt.Progress == nil {
				// With a bar the client prints its warnings above it.
				opt.Log = getWarnLogger(e)
			}
			res, err := client.Get(e.ctx, c, args[0], dest, opt)
			if err != nil && e.bearer() == "" && errors.Is(err, wharf.ErrNotFound) {
				return fmt.Errorf("%w (without a token only public packages are visible: set --token or WHARF_TOKEN to a client token)", err)
			}
			if err != nil {
				return err
			}
			return e.print(res, func(w io.Writer) {
				files := "files"
				if res.Files == 1 {
					files = "file"
				}
				fmt.Fprintf(w, "%s %s (%s): %d %s, %s in %s\n",
					res.Name, res.Version, res.PackageID, res.Files, files, getByteSize(res.Bytes), res.Dest)
				if res.SkippedFiles > 0 {
					fmt.Fprintf(w, "%d of them were in place already\n", res.SkippedFiles)
				}
				for _, cb := range res.Codebases {
					if cb.Bytes > 0 {
						fmt.Fprintf(w, "%s from %s\n", getByteSize(cb.Bytes), cb.Server)
					}
				}
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&dest, "dest", "", "folder to download into; created when missing (required)")
	f.IntVar(&parallel, "parallel", client.DefaultParallel, "files to download at once")
	return cmd
}

// getWarnLogger reports retries and failovers on stderr, and nothing quieter.
func getWarnLogger(e *env) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelWarn}
	if e.json {
		return slog.New(slog.NewJSONHandler(e.stdio.Err, opts))
	}
	return slog.New(slog.NewTextHandler(e.stdio.Err, opts))
}

// getTerminal returns w when it is a terminal (a console on Windows), where
// the progress bar goes, and nil otherwise.
func getTerminal(w io.Writer) io.Writer {
	if f, ok := w.(*os.File); ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())) {
		return f
	}
	return nil
}

// getByteSize formats n bytes for people: 512 B, 1.5 KiB, 3.2 GiB.
func getByteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
