package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/client"
	"github.com/wharf-project/wharf/internal/publish"
	"github.com/wharf-project/wharf/internal/wharf"
)

func init() { register(newPackageCmd) }

func newPackageCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "package", Short: "Publish, list, show and delete packages"}
	cmd.AddCommand(newPackageAddCmd(e), newPackageLsCmd(e), newPackageShowCmd(e), newPackageRmCmd(e))
	return cmd
}

func newPackageAddCmd(e *env) *cobra.Command {
	var name, version, servers, customLocation string
	var signed, public bool
	var parallel int
	cmd := &cobra.Command{
		Use:   "add DIR --name N --version V [--servers A,B] [--custom-location PATH] [--public]",
		Short: "Publish the files of a folder as a package",
		Long: `Publish every regular file below DIR as a package. Files are hashed in
parallel and only the ones the Notification Server lacks are uploaded, so
re-running an interrupted or repeated add is cheap. Without --servers the
package is assigned to all Package Servers.

A package is signed unless --public: clients read it with a client token
('wharf client-token create'), and Package Servers serve its files only
through the signed, expiring URLs the Notification Server hands to them. A
public package needs no credential anywhere: for bootstrapping machines
that have none yet. (--signed says the default out loud.)

Symbolic links and special files in DIR are refused: a package holds
regular files only.`,
		Example: `  wharf package add ./build --name agent --version 1.4.2
  wharf package add ./drivers --name drivers --version 7 --servers ps-paris,ps-lyon
  wharf package add ./bootstrap --name bootstrap --version 1 --public`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if name == "" || version == "" {
				return usageError{errors.New("--name and --version are required")}
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			if signed && public {
				return usageError{errors.New("--signed and --public: a package is one or the other")}
			}
			m := api.PackageManifest{Name: name, Version: version, CustomLocation: customLocation, Signed: signed, Public: public}
			if servers == "" {
				m.Assignment.All = true
			} else {
				for _, s := range strings.Split(servers, ",") {
					if s = strings.TrimSpace(s); s != "" {
						m.Assignment.Servers = append(m.Assignment.Servers, s)
					}
				}
			}
			var progress publish.Progress
			if !e.json && isTerminal(e.stdio.Err) {
				bar := newByteBar(e.stdio.Err, "upload")
				defer bar.Wait()
				progress = bar
			}
			res, err := publish.Publish(e.ctx, c, args[0], m, publish.Options{Parallel: parallel, Progress: progress})
			if err != nil {
				return err
			}
			return e.print(res, func(w io.Writer) {
				verb := "Published"
				if !res.Created {
					verb = "Already published"
				}
				fmt.Fprintf(w, "%s %s %s as %s: %d files, %s; uploaded %d blobs (%s), %d already on the server\n",
					verb, res.Package.Name, res.Package.Version, res.Package.ID, res.Package.FileCount,
					humanize.IBytes(uint64(res.Package.Size)), res.Uploaded, humanize.IBytes(uint64(res.UploadedBytes)), res.Skipped)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "package name")
	f.StringVar(&version, "version", "", "package version")
	f.StringVar(&servers, "servers", "", "comma-separated Package Servers to assign it to (default: all)")
	f.StringVar(&customLocation, "custom-location", "", "absolute path where Package Servers must keep this package")
	f.BoolVar(&public, "public", false, "readable and downloadable without any credential")
	f.BoolVar(&signed, "signed", false, "downloads need a token and signed, expiring URLs (the default)")
	f.IntVar(&parallel, "parallel", 4, "concurrent uploads")
	return cmd
}

func newPackageLsCmd(e *env) *cobra.Command {
	var name, filter string
	var offset, limit int
	cmd := &cobra.Command{
		Use:   "ls [--filter TEXT] [--offset N] [--limit N]",
		Short: "List packages, a page at a time",
		Long: `List the packages in name order, a page at a time (the Notification
Server pages and filters in its database): --limit N packages (default 1000;
0 lists all) from --offset N, those where each word of --filter TEXT is in
the name, the version or the id (ignoring case). The last line says how
many match in all.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if offset < 0 || limit < 0 {
				return usageError{errors.New("--offset and --limit must not be negative")}
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			page, err := c.PackagePage(e.ctx, name, filter, offset, limit)
			if err != nil {
				return err
			}
			list := page.Packages
			return e.print(page, func(w io.Writer) {
				defer func() {
					if len(list) < page.Total {
						fmt.Fprintf(w, "\n%d to %d of %d packages (--offset, --limit)\n", offset+min(1, len(list)), offset+len(list), page.Total)
					}
				}()
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				defer tw.Flush()
				fmt.Fprintln(tw, "ID\tNAME\tVERSION\tFILES\tSIZE\tASSIGNED TO\tCREATED")
				for _, p := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", p.ID, p.Name, p.Version, p.FileCount,
						humanize.IBytes(uint64(p.Size)), assignmentText(p.Assignment), p.CreatedAt.Local().Format("2006-01-02 15:04"))
				}
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "only the packages of this name")
	f.StringVar(&filter, "filter", "", "only packages where each word of TEXT is in the name, version or id")
	f.IntVar(&offset, "offset", 0, "skip the first N packages")
	f.IntVar(&limit, "limit", 1000, "list at most N packages (0: all)")
	return cmd
}

func assignmentText(a api.Assignment) string {
	if a.All {
		return "all servers"
	}
	return strings.Join(a.Servers, ",")
}

func newPackageShowCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID | NAME[@VERSION]",
		Short: "Show a package: files, assignment and the state on each Package Server",
		Long: `Show a package, named by its id or, as ` + "`wharf get`" + ` takes it, by NAME@VERSION
(NAME alone: its newest version).`,
		Example: `  wharf package show agent@1.4.2
  wharf package show agent
  wharf package show 6f1c2a4e-0b1d-4c3e-9f00-0123456789ab`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			p, err := client.Resolve(e.ctx, c, args[0])
			if err != nil {
				return err
			}
			return e.print(p, func(w io.Writer) {
				fmt.Fprintf(w, "ID:          %s\nName:        %s\nVersion:     %s\nSize:        %s in %d files\nAssigned to: %s\n",
					p.ID, p.Name, p.Version, humanize.IBytes(uint64(p.Size)), p.FileCount, assignmentText(p.Assignment))
				if p.CustomLocation != "" {
					fmt.Fprintf(w, "Location:    %s (custom)\n", p.CustomLocation)
				}
				access := "signed (a client token reads it)"
				if p.Public {
					access = "public (no credential needed)"
				}
				fmt.Fprintf(w, "Access:      %s\nCreated:     %s\n", access, p.CreatedAt.Local().Format("2006-01-02 15:04:05"))
				if len(p.States) > 0 {
					fmt.Fprintln(w, "\nPackage servers:")
					tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
					for _, s := range p.States {
						fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.Server, s.State, s.Reason)
					}
					tw.Flush()
				}
				fmt.Fprintln(w, "\nFiles:")
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				for _, f := range p.Files {
					fmt.Fprintf(tw, "  %s\t%s\t%s\n", f.Path, humanize.IBytes(uint64(f.Size)), f.SHA256)
				}
				tw.Flush()
			})
		},
	}
}

func newPackageRmCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "rm ID | NAME@VERSION",
		Short: "Delete a package; Package Servers remove it on their next configuration",
		Long: `Delete a package, named by its id or by NAME@VERSION (a version is required:
a name alone could mean another version than the one meant).`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			id, label := args[0], args[0]
			if _, perr := wharf.ParsePackageID(args[0]); perr != nil {
				name, version, err := client.ParseSpec(args[0])
				if err != nil {
					return usageError{err}
				}
				if version == "" {
					return usageError{fmt.Errorf("give the package as ID or NAME@VERSION, not %q alone", name)}
				}
				p, err := client.Resolve(e.ctx, c, args[0])
				if err != nil {
					return err
				}
				if p.Name != name || p.Version != version {
					return fmt.Errorf("%q names package %s@%s (%s), not version %q of %q: give its id", args[0], p.Name, p.Version, p.ID, version, name)
				}
				id, label = p.ID, fmt.Sprintf("%s@%s (%s)", p.Name, p.Version, p.ID)
			}
			if err := c.DeletePackage(e.ctx, id); err != nil {
				return err
			}
			return e.print(map[string]string{"deleted": id}, func(w io.Writer) {
				fmt.Fprintf(w, "Deleted package %s\n", label)
			})
		},
	}
}
