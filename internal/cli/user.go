package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharf-project/wharf/internal/ns"
	"github.com/wharf-project/wharf/internal/ns/catalog"
	"github.com/wharf-project/wharf/internal/wharf"
)

// nsUserCommands returns `ns add-user`, `ns rm-user` and `ns users`.
func nsUserCommands(e *env) []*cobra.Command {
	return []*cobra.Command{newNSAddUserCmd(e), newNSRemoveUserCmd(e), newNSUsersCmd(e)}
}

// nsStoreFlags are the flags of the commands that open the NS's store
// directly: they run on the NS machine, as its administrator.
type nsStoreFlags struct{ data, db, config string }

func (f *nsStoreFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", "", "the NS data directory (as for 'wharf ns serve')")
	fl.StringVar(&f.db, "db", "", "PostgreSQL DSN; empty for SQLite in the data directory")
	fl.StringVar(&f.config, "config", "", "the NS's TOML configuration file")
}

// open opens the console users of the NS's store; the caller closes them.
func (f *nsStoreFlags) open(e *env, cmd *cobra.Command) (*ns.Users, error) {
	data, db := f.data, f.db
	if f.config != "" {
		fc, err := loadNSConfig(f.config)
		if err != nil {
			return nil, err
		}
		if !cmd.Flags().Changed("data") {
			data = fc.Data
		}
		if !cmd.Flags().Changed("db") {
			db = fc.DB
		}
	}
	if data == "" && db == "" {
		return nil, usageError{errors.New("no store: set --data DIR (and --db DSN for PostgreSQL) or --config FILE")}
	}
	return ns.OpenUsers(e.ctx, data, db)
}

// readPassword reads the password from the first line of stdin. On a
// terminal it prompts on stderr first; the typed characters are shown.
func readPassword(e *env) (string, error) {
	if f, ok := e.stdio.In.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprint(e.stdio.Err, "Password (shown as you type; pipe it in to hide it): ")
		}
	}
	line, err := bufio.NewReaderSize(io.LimitReader(e.stdio.In, 4096), 4096).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("no password on stdin: give it as the first line")
	}
	return pw, nil
}

func newNSAddUserCmd(e *env) *cobra.Command {
	var sf nsStoreFlags
	var replace bool
	cmd := &cobra.Command{
		Use:   "add-user NAME [--data DIR] [--db DSN] [--replace]",
		Short: "Create a console user (an administrator who logs in with a password)",
		Long: `Create a user of the NS web console, reading the password from the first
line of stdin (at least 10 characters, at most 72 bytes). Only a bcrypt hash
of it is kept. With --replace, set a new password for an existing user
instead: the user's open console sessions end.

This runs on the NS machine and opens the NS's store directly (the same
--data, --db or --config as 'wharf ns serve'); the NS may be running.
The admin token always logs in too, as user "admin".`,
		Example: `  printf '%s\n' "$PASSWORD" | wharf ns add-user alice --data /var/lib/wharf
  wharf ns add-user bob --db postgres://wharf@db/wharf < password.txt`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			users, err := sf.open(e, cmd)
			if err != nil {
				return err
			}
			defer users.Close()
			pw, err := readPassword(e)
			if err != nil {
				return err
			}
			name, err := catalog.ParseUserName(args[0])
			if err != nil {
				return err
			}
			verb := "Created"
			if replace {
				err, verb = users.SetUserPassword(e.ctx, name, pw), "Set a new password for"
			} else {
				_, err = users.CreateUser(e.ctx, name, pw)
				if errors.Is(err, wharf.ErrExists) {
					err = fmt.Errorf("user %s exists already (use --replace to set a new password)", name)
				}
			}
			if err != nil {
				return err
			}
			return e.print(map[string]string{"user": name}, func(w io.Writer) { fmt.Fprintf(w, "%s console user %s\n", verb, name) })
		},
	}
	sf.add(cmd)
	cmd.Flags().BoolVar(&replace, "replace", false, "set a new password for an existing user")
	return cmd
}

func newNSRemoveUserCmd(e *env) *cobra.Command {
	var sf nsStoreFlags
	cmd := &cobra.Command{
		Use:   "rm-user NAME [--data DIR] [--db DSN]",
		Short: "Remove a console user; their open sessions end",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			users, err := sf.open(e, cmd)
			if err != nil {
				return err
			}
			defer users.Close()
			if err := users.DeleteUser(e.ctx, args[0]); err != nil {
				return err
			}
			return e.print(map[string]string{"removed": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "Removed console user %s\n", args[0]) })
		},
	}
	sf.add(cmd)
	return cmd
}

func newNSUsersCmd(e *env) *cobra.Command {
	var sf nsStoreFlags
	cmd := &cobra.Command{
		Use:   "users [--data DIR] [--db DSN]",
		Short: "List the console users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			users, err := sf.open(e, cmd)
			if err != nil {
				return err
			}
			defer users.Close()
			list, err := users.ListUsers(e.ctx)
			if err != nil {
				return err
			}
			type userJSON struct {
				Name      string    `json:"name"`
				CreatedAt time.Time `json:"created_at"`
				UpdatedAt time.Time `json:"password_set_at"`
			}
			out := make([]userJSON, 0, len(list))
			for _, u := range list {
				out = append(out, userJSON{u.Name, u.CreatedAt, u.UpdatedAt})
			}
			return e.print(map[string]any{"users": out}, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tCREATED\tPASSWORD SET")
				for _, u := range out {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Name, u.CreatedAt.Local().Format("2006-01-02 15:04"), u.UpdatedAt.Local().Format("2006-01-02 15:04"))
				}
				tw.Flush()
			})
		},
	}
	sf.add(cmd)
	return cmd
}
