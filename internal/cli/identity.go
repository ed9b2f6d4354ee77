package cli

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ns"
)

func init() { register(newClientTokenCmd) }

func newClientTokenCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "client-token",
		Short: "Create, list and revoke client tokens (read-only credentials for wharf get)",
		Long: `A client token is the credential of a machine that downloads packages
('wharf get --token TOKEN', or WHARF_TOKEN): it may list packages, read
their manifests and resolve their codebases (the Notification Server hands
it signed, expiring Package Server URLs), and nothing else. The admin token
is never needed to download. Public packages need no token at all.`,
	}
	cmd.AddCommand(newClientTokenCreateCmd(e), newClientTokenLsCmd(e), newClientTokenRevokeCmd(e))
	return cmd
}

func newClientTokenCreateCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "create NAME",
		Short: "Create a client token and print it (shown once)",
		Long: `Create a client token named NAME (letters, digits, '-', '_', '.') and print
it. The Notification Server keeps only its hash: the token cannot be shown
again; revoke it and create another when it is lost.`,
		Example: `  wharf client-token create build-farm
  WHARF_TOKEN=$(wharf client-token create laptops --json | jq -r .token) wharf get agent --dest /opt/agent`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			t, err := c.CreateClientToken(e.ctx, args[0])
			if err != nil {
				return err
			}
			return e.print(t, func(w io.Writer) { fmt.Fprintln(w, t.Token) })
		},
	}
}

func newClientTokenLsCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List the client tokens (names and creation times, never the tokens)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			list, err := c.ListClientTokens(e.ctx)
			if err != nil {
				return err
			}
			return e.print(api.ClientTokenList{Tokens: list}, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tCREATED")
				for _, t := range list {
					fmt.Fprintf(tw, "%s\t%s\n", t.Name, t.CreatedAt.Local().Format("2006-01-02 15:04:05"))
				}
				tw.Flush()
			})
		},
	}
}

func newClientTokenRevokeCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a client token: it stops working at once, on every NS replica",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			if err := c.RevokeClientToken(e.ctx, args[0]); err != nil {
				return err
			}
			return e.print(map[string]string{"revoked": args[0]}, func(w io.Writer) {
				fmt.Fprintf(w, "Client token %s revoked\n", args[0])
			})
		},
	}
}

func newServerRmCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a Package Server: its credential stops working at once",
		Long: `Remove an enrolled Package Server with what it reported (package states,
overrides, tasks, location events; its alerts stay). Its credential stops
working at once on every Notification Server replica, its long poll ends,
and the NS no longer hands out its codebases. The machine keeps its files;
to bring it back, delete its credential.json and enroll it again.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			if err := c.RemoveServer(e.ctx, args[0]); err != nil {
				return err
			}
			return e.print(map[string]string{"removed": args[0]}, func(w io.Writer) {
				fmt.Fprintf(w, "Package Server %s removed; its credential no longer works\n", args[0])
			})
		},
	}
}

func newServerRotateCmd(e *env) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "rotate-credential NAME [--timeout 1m]",
		Short: "Have a Package Server replace its credential",
		Long: `Ask a Package Server to replace its credential. It gets the request with
its next poll (at once: its long poll wakes), picks a new random
credential, keeps it in its credential file (fsynced) and sends it to the
Notification Server, which from then on takes the new one only, on every
replica. The command waits for that (--timeout; 0: does not wait).

A credential known to be stolen is better removed ('wharf server rm') and the
server enrolled again: whoever holds it could answer this request first.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			t, err := c.RequestCredentialRotation(e.ctx, args[0])
			if err != nil {
				return err
			}
			deadline := time.Now().Add(timeout)
			for timeout > 0 && t.DoneAt.IsZero() {
				if time.Now().After(deadline) {
					return fmt.Errorf("%s did not replace its credential within %s; is it running? (task %s stays queued)", args[0], timeout, t.ID)
				}
				select {
				case <-e.ctx.Done():
					return e.ctx.Err()
				case <-time.After(250 * time.Millisecond):
				}
				if t, err = c.Task(e.ctx, args[0], t.ID); err != nil {
					return err
				}
			}
			if t.Error != "" {
				return errors.New(t.Error)
			}
			return e.print(t, func(w io.Writer) {
				if t.DoneAt.IsZero() {
					fmt.Fprintf(w, "Credential rotation queued for %s (task %s)\n", t.Server, t.ID)
					return
				}
				fmt.Fprintf(w, "%s replaced its credential; the old one no longer works\n", t.Server)
			})
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait for the Package Server (0: do not wait)")
	return cmd
}

func newNSRotateAdminCmd(e *env) *cobra.Command {
	var data, db string
	cmd := &cobra.Command{
		Use:   "rotate-admin-token [--data DIR [--db DSN]]",
		Short: "Replace the admin token (the old one stops working at once)",
		Long: `Replace the admin token and print the new one (shown once). The old token
stops working at once on every Notification Server replica. The NS that
answers also rewrites its <data dir>/admin.token; copy the new token to
the other replicas' files if scripts there read them.

With --data (and --db for PostgreSQL) the command works on the NS's store
directly, without the admin token — the way back in when it is lost. It
writes the new token to DIR/admin.token. Replicas on PostgreSQL take it at
once; a running NS on SQLite within two minutes (its full resync), or at
its restart.`,
		Example: `  wharf ns rotate-admin-token
  wharf ns rotate-admin-token --data /var/lib/wharf            # the admin token is lost`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var tok string
			if data != "" || db != "" {
				t, err := ns.RotateAdminTokenOffline(e.ctx, data, db, e.logger())
				if err != nil {
					return err
				}
				tok = t
			} else {
				c, err := e.client()
				if err != nil {
					return err
				}
				if tok, err = c.RotateAdminToken(e.ctx); err != nil {
					return err
				}
			}
			return e.print(api.AdminToken{Token: tok}, func(w io.Writer) { fmt.Fprintln(w, tok) })
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "the NS's data directory: replace the token through its store, offline")
	cmd.Flags().StringVar(&db, "db", "", "the NS's PostgreSQL DSN (with --data, or alone)")
	return cmd
}
