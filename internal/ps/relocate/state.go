package relocate

import (
	"context"
	"path/filepath"

	"github.com/wharf-project/wharf/internal/wharf"
)

// Location is where a package is: Folder holds its files; Link, when not
// empty, is a link (symlink, or junction on Windows) at a store root that
// points to Folder — the package "pretends" to be at the root of Link while
// its bytes stay at Folder (SPEC §6.2, link fallback). Serve a package from
// Folder.
type Location struct {
	Folder string `json:"folder"`
	Link   string `json:"link,omitempty"`
}

// Package is one package as the index knows it, without its file list.
type Package struct {
	ID wharf.PackageID `json:"id"`
	Location
	// Custom marks a custom-location package (SPEC §2): never relocated,
	// only looked at so a target inside it is refused.
	Custom bool `json:"custom,omitempty"`
	// Size is the sum of the sizes of its files, in bytes.
	Size int64 `json:"size"`
	// LongestPath is the longest relative path (in bytes) of its files,
	// '/'-separated as in the manifest.
	LongestPath string `json:"longest_path"`
}

// Index is what the engine needs from the Package Server's state DB about
// packages. The PS's state DB implements it; relocatetest.Index is an
// in-memory one. Methods may be called from several goroutines at once;
// they take plain values and hold no file-system handle.
type Index interface {
	// Packages returns up to limit ready packages (whole on disk; a
	// package still downloading is not listed) whose ID sorts after
	// after (all of them for ""), in ID order, custom-location ones
	// included. An empty result ends the listing. The engine pages
	// through it and never holds the whole set: a store of 100,000
	// packages is fine. Packages added or removed between two pages may
	// or may not be seen.
	Packages(ctx context.Context, after wharf.PackageID, limit int) ([]Package, error)
	// Files returns up to limit files of package id whose path sorts
	// after after (byte order; all for ""), in path order. A package the
	// index no longer has gives an error matching wharf.ErrNotFound.
	Files(ctx context.Context, id wharf.PackageID, after string, limit int) ([]wharf.File, error)
	// SetLocation records where package id now is: the switch. It is
	// durable when it returns (a committed transaction), idempotent, and
	// fails with an error matching wharf.ErrNotFound when the index no
	// longer has the package (it was unassigned meanwhile).
	SetLocation(ctx context.Context, id wharf.PackageID, loc Location) error
	// SetRoot records that every package whose folder is in the store
	// root from is now in the store root to, under the same name: the
	// switch of a root that moved whole (Engine.Run's fast path). It is
	// durable when it returns (one transaction), idempotent, and returns
	// how many packages it switched. Links are not touched (a root moves
	// whole only when no package is behind one).
	SetRoot(ctx context.Context, from, to string) (int, error)
}

// Kind is the kind of a journal entry.
type Kind string

// Kinds of journal entries.
const (
	// KindMove moves a package's folder to a store root, by rename or
	// copy, replacing a link of the package there if any.
	KindMove Kind = "move"
	// KindLink makes a link at a store root to a package that stays where
	// it is.
	KindLink Kind = "link"
	// KindRoot moves a whole store root, every package in it, with one
	// rename (Source to Dest), then switches them all (Index.SetRoot).
	KindRoot Kind = "root"
	// KindLeftover removes something a move left behind (an old folder, a
	// link) that could not be removed at the time.
	KindLeftover Kind = "leftover"
)

// Step is how far a journal entry got; see "Journal" in the package doc
// for what Recover does at each.
type Step string

// Steps of journal entries.
const (
	// StepRename (move): renaming Source to Dest, which did not exist.
	StepRename Step = "rename"
	// StepStageRename (move, replacing a link): renaming Source to Temp.
	StepStageRename Step = "stage-rename"
	// StepCopy (move): copying Source into Temp.
	StepCopy Step = "copy"
	// StepStaged (move): Temp holds the whole package, verified and
	// durable; from here the move only goes forward.
	StepStaged Step = "staged"
	// StepLink (link): making the link Dest to Source.
	StepLink Step = "link"
	// StepRemove (leftover): removing Path (after renaming it to Trash,
	// when Trash is set).
	StepRemove Step = "remove"
)

// Entry is one open journal entry: a package move or link in flight, or a
// leftover to remove. Its fields are fixed when it begins; only Step
// changes.
type Entry struct {
	// Key identifies the entry among the open ones: the package id for
	// move and link entries (so a package has at most one in flight),
	// "leftover:" and the path for leftovers.
	Key     string          `json:"key"`
	Kind    Kind            `json:"kind"`
	Package wharf.PackageID `json:"package"`
	Step    Step            `json:"step"`
	// Target is the store root moved or linked to.
	Target string `json:"target,omitempty"`
	// Source is the folder holding the package's files when the entry
	// began, and SourceLink the link that pointed to it then ("" if none).
	Source     string `json:"source,omitempty"`
	SourceLink string `json:"source_link,omitempty"`
	// Dest is <Target>/<package id>; Temp is <Target>/.wharf-relocate/<id>;
	// Trash is where Source is renamed before it is removed
	// (<Source's root>/.wharf-trash/<id>).
	Dest  string `json:"dest,omitempty"`
	Temp  string `json:"temp,omitempty"`
	Trash string `json:"trash,omitempty"`
	// Path (leftover) is what to remove; Trash, if set, is where to rename
	// it first.
	Path string `json:"path,omitempty"`
}

// ServingFolders returns the folders where the package of open entry e
// may be whole while e is open, in the order the move passes through them;
// serving tries them when the folder the index names is missing (see
// "Serving while relocating" in docs/design.md). Each is either absent or
// holds the whole package (or is a link to it) at every instant of the
// protocol, whatever the disk's speed:
//
//   - rename: Source until the rename, Dest after it;
//   - stage-rename: Source, then Temp after the rename, then Dest after the
//     exchange or the rename that places it;
//   - copy: Source only (Temp is a partial copy, never served);
//   - staged: Temp (whole and durable), Dest once placed, and Source until it
//     is trashed after the switch.
//
// A link or leftover entry moves no package folder: nil.
func (e Entry) ServingFolders() []string {
	if e.Kind != KindMove {
		return nil
	}
	switch e.Step {
	case StepRename:
		return []string{e.Source, e.Dest}
	case StepCopy:
		return []string{e.Source}
	case StepStageRename, StepStaged:
		return []string{e.Source, e.Temp, e.Dest}
	}
	return nil
}

// RootServingFolders returns, for an open root entry (KindRoot), the
// folders where the package whose folder the index names may be whole: that
// folder until the root's rename, its namesake in Dest after it. It is nil
// for a folder outside Source, and for entries of other kinds.
func (e Entry) RootServingFolders(folder string) []string {
	folder = filepath.Clean(folder)
	if e.Kind != KindRoot || filepath.Dir(folder) != filepath.Clean(e.Source) {
		return nil
	}
	return []string{folder, filepath.Join(e.Dest, filepath.Base(folder))}
}

// Journal is the relocation journal: the intent of every move in flight,
// kept in the Package Server's state DB next to the index (relocatetest has
// an in-memory one). Every method is durable when it returns, like a
// committed transaction, and may be called from several goroutines at once.
type Journal interface {
	// Begin records a new open entry. It fails with an error matching
	// wharf.ErrExists if an entry with the same Key is open (and changes
	// nothing then).
	Begin(ctx context.Context, e Entry) error
	// Advance sets the Step of the open entry key. It fails with an error
	// matching wharf.ErrNotFound if there is none.
	Advance(ctx context.Context, key string, step Step) error
	// Close removes the open entry key; closing an entry that is not open
	// is not an error.
	Close(ctx context.Context, key string) error
	// List returns every open entry in the order they began. There are
	// few: one per move in flight and one per leftover not yet removed.
	List(ctx context.Context) ([]Entry, error)
}
