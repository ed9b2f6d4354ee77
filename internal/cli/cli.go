// Package cli is the `wharf` command line: one file per command group, all
// built on cobra. Main is the only entry point; it takes its standard
// streams as arguments so tests can run commands in-process.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/tlsca"
)

// Stdio are the streams a command reads and writes.
type Stdio struct {
	In       io.Reader
	Out, Err io.Writer
}

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // the command failed; the reason is on stderr
	exitUsage = 2 // the command line was wrong
)

// env is what every command shares: streams, global flags, the context.
type env struct {
	ctx   context.Context
	stdio Stdio
	ns    string // --ns; read through nsURL (falls back to WHARF_NS)
	token string // --token; read through bearer (falls back to WHARF_TOKEN)
	ca    string // --ca; read through caFile (falls back to WHARF_CA)
	json  bool   // --json
}

// usageError marks errors in the command line itself.
type usageError struct{ error }

// Main runs the wharf command line with args (without the program name) and
// returns the process exit status.
func Main(ctx context.Context, args []string, stdio Stdio) int {
	e := &env{ctx: ctx, stdio: stdio}
	root := newRoot(e)
	root.SetArgs(args)
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	msg := strings.TrimSpace(err.Error())
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	fmt.Fprintf(stdio.Err, "wharf: %s\n", msg)
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "accepts ") ||
		strings.HasPrefix(msg, "requires ") || strings.HasPrefix(msg, "required flag") {
		return exitUsage
	}
	return exitError
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "wharf",
		Short:         "Wharf distributes software packages to Package Servers and their clients",
		SilenceUsage:  true,
		SilenceErrors: true,
		Long: `Wharf distributes software packages from a Notification Server (NS) to
Package Servers (PS), which keep them on their own disks and serve them to
the machines of their site.

Commands that talk to the NS take its address and a token from --ns and
--token, or from the WHARF_NS and WHARF_TOKEN environment variables. The NS
decides what a token may do: the admin token administers; a client token
('wharf client-token create') only reads, which is all 'wharf get' needs;
public packages need none. --ca FILE (or WHARF_CA) adds the certificate
authority of an NS or Package Server served over HTTPS to the system's.

EXIT STATUS
  0 on success, 1 when the command failed, 2 for a wrong command line;
  the reason is one line on stderr.`,
	}
	pf := root.PersistentFlags()
	// No default from the environment: a default is printed by --help,
	// and a token must never be (they are read when used: nsURL, bearer).
	pf.StringVar(&e.ns, "ns", "", "Notification Server URL (env WHARF_NS)")
	pf.StringVar(&e.token, "token", "", "admin or client token (env WHARF_TOKEN)")
	pf.StringVar(&e.ca, "ca", "", "PEM file of a certificate authority to trust besides the system's (env WHARF_CA)")
	pf.BoolVar(&e.json, "json", false, "print JSON instead of text")
	for _, add := range commands {
		root.AddCommand(add(e))
	}
	strictGroups(root)
	return root
}

// strictGroups makes every command that only groups subcommands (wharf
// policy, wharf server, ...) refuse an unknown subcommand with a usage error
// (exit 2) and a suggestion, instead of printing its help and exiting 0 as
// cobra does for a command without a Run. Without arguments a group still
// prints its help.
func strictGroups(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		strictGroups(sub)
	}
	if !cmd.HasSubCommands() || cmd.Runnable() {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return c.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
		if c.SuggestionsMinimumDistance <= 0 {
			c.SuggestionsMinimumDistance = 2
		}
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += " (did you mean " + strings.Join(s, " or ") + "?)"
		}
		return usageError{fmt.Errorf("%s; run '%s --help' for its commands", msg, c.CommandPath())}
	}
}

// commands lists the constructors of the top-level commands; each command
// file adds its own in an init function, so the files stay independent.
var commands []func(*env) *cobra.Command

func register(f func(*env) *cobra.Command) { commands = append(commands, f) }

// nsURL is --ns, or WHARF_NS.
func (e *env) nsURL() string {
	if e.ns != "" {
		return e.ns
	}
	return os.Getenv("WHARF_NS")
}

// bearer is --token, or WHARF_TOKEN.
func (e *env) bearer() string {
	if e.token != "" {
		return e.token
	}
	return os.Getenv("WHARF_TOKEN")
}

// caFile is --ca, or WHARF_CA.
func (e *env) caFile() string {
	if e.ca != "" {
		return e.ca
	}
	return os.Getenv("WHARF_CA")
}

// httpClient returns the HTTP client of the commands: the system's roots
// and --ca trusted, response headers awaited at most header (0: as long
// as it takes, for the commands that follow long polls).
func (e *env) httpClient(header time.Duration) (*http.Client, error) {
	t, err := tlsca.Transport(e.caFile(), header)
	if err != nil {
		return nil, usageError{fmt.Errorf("--ca: %w", err)}
	}
	return &http.Client{Transport: t}, nil
}

// client returns an API client for --ns with --token, which it needs: for
// the commands that administer (the NS refuses a client token there).
func (e *env) client() (*apiclient.Client, error) {
	if e.nsURL() == "" {
		return nil, usageError{errors.New("no notification server: set --ns or WHARF_NS")}
	}
	if e.bearer() == "" {
		return nil, usageError{errors.New("no token: set --token or WHARF_TOKEN (the admin token)")}
	}
	hc, err := e.httpClient(0)
	if err != nil {
		return nil, err
	}
	return apiclient.New(e.nsURL(), e.bearer(), hc)
}

// readClient returns an API client for --ns with --token when there is
// one, and without a token otherwise (public packages only): for the
// commands that only read (wharf get). The NS decides what it may read.
func (e *env) readClient() (*apiclient.Client, *http.Client, error) {
	if e.nsURL() == "" {
		return nil, nil, usageError{errors.New("no notification server: set --ns or WHARF_NS")}
	}
	hc, err := e.httpClient(30 * time.Second)
	if err != nil {
		return nil, nil, err
	}
	c, err := apiclient.New(e.nsURL(), e.bearer(), hc)
	return c, hc, err
}

// print writes v as indented JSON with --json, else calls text.
func (e *env) print(v any, text func(w io.Writer)) error {
	if e.json {
		enc := json.NewEncoder(e.stdio.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(e.stdio.Out)
	return nil
}

// logger returns the logger for long-running commands: text on stderr.
func (e *env) logger() *slog.Logger {
	if e.json {
		return slog.New(slog.NewJSONHandler(e.stdio.Err, nil))
	}
	return slog.New(slog.NewTextHandler(e.stdio.Err, nil))
}
