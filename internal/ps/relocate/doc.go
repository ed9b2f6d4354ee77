// Package relocate moves a Package Server's whole store to a new location
// (SPEC §6): it checks the prerequisites, moves every package all or
// nothing — by rename on the same volume, by a verified copy across
// volumes — links the packages that cannot move, gathers rotated packages,
// and survives a crash at any instant through a journal that Recover rolls
// forward or back from what is on disk.
//
// The engine sees the disk through fsys.FS, the volumes through
// volume.Facts and the PS's state DB through two small interfaces it
// declares, [Index] (the packages, where each one is, their manifests) and
// [Journal] (the intent of every move in flight). Package relocatetest has
// in-memory implementations of both; the crash tests run the engine on
// memfs, which drops on Crash whatever was not fsynced.
//
// # Vocabulary
//
// A store root is a folder holding package folders: the primary location
// (the default <install dir>/Package Delivery, or a custom path), or
// <volume>/Package Delivery on a volume that took rotated packages. The
// target is the store root an attempt moves packages to. A package's
// Location is its Folder (where its files are) and, for a package left
// behind, the Link at a store root that points to that folder. The switch is
// Index.SetLocation: before it the PS serves the package from its old place,
// after it from the new one.
//
// # On-disk layout
//
// The layout of a store root is package storeroot's: the marker that names
// the Package Server, the temporary folder a package is copied into
// (<root>/.wharf-relocate/<id>, a storeroot.Staging), the trash, the names
// that are Wharf's own. A target must be empty (a volume's lost+found,
// System Volume Information and $RECYCLE.BIN and Wharf's own entries
// aside) or carry the marker of this server: Wharf never overwrites or
// removes anything it did not create (the plan's writability probe is a
// file it creates and removes at once). The target is made a store root
// (storeroot.Roots.Prepare: created durably, marked) before anything else,
// so an interrupted first attempt leaves an empty folder or a store.
//
// # Prerequisites
//
// [Engine.Plan] evaluates a target against the six prerequisites of SPEC
// §6.1 and reports every one that fails as its status bit, with the
// figures an administrator needs (MiB needed against MiB free, the longest
// path against the limit, how many packages move by rename and by copy, an
// estimate of the time). [Engine.Run] starts with it: if any prerequisite
// fails, nothing moves. Space needed is the bytes of every package to move
// that is not already on the target volume (rotated ones included) plus
// the reserve, against the volume's AvailBytes. The path-length check is
// made on the longest path the move writes: the temporary copy path when
// packages are copied.
//
// # Moving a package
//
// When the attempt takes a new target and the whole store is one root on
// the target's volume (nothing rotated elsewhere, behind a link, or at the
// target already), the root itself is renamed to the target in one call
// and every package switched in one transaction, under one journal entry
// of kind root (see moveRoot); otherwise:
//
// Each package moves on its own, up to Options.Parallel at a time, under a
// journal entry keyed by its id (so at most one move of a package is in
// flight). Dest is <target>/<id>, Temp <target>/.wharf-relocate/<id>.
//
//   - Same volume: the entry begins at step rename; Source is renamed to
//     Dest (renameat2 RENAME_NOREPLACE: nothing is ever replaced); both
//     folders are synced; the index is switched; a link of the package at
//     an older target is removed; the entry is closed. Whether the volume is
//     the same is decided by trying: EXDEV sends the package down the copy
//     path (the entry advances to copy).
//   - Across volumes: the entry is at step copy. The source must pass
//     fsys.FS.CanRemove (all or nothing: a package whose old folder could
//     not be removed is not moved). Every file of the manifest is copied
//     into Temp, hashed while copying and compared with the manifest's size
//     and SHA-256, and fsynced; every folder of Temp, and Temp's parent, is
//     synced. CanRemove is checked again and the entry advances to staged.
//   - From staged the move only goes forward: Temp is renamed to Dest, the
//     target synced, the index switched; then the old folder is renamed to
//     <old root>/.wharf-trash/<id> in one step and removed there, each step
//     synced; the entry is closed.
//   - What cannot be removed after the switch (the disk answers EIO, a file
//     became immutable) is journaled as a leftover entry before the move's
//     entry closes, and removed by a later Recover or Run. The package is
//     whole at the target; its leftovers are never forgotten.
//
// A ctx canceled mid-attempt (a new target) is seen between packages and
// between the files of a copy: a copy not yet staged is discarded, a move
// past staged is finished. The journal is consistent when Run returns, and
// a new Run toward another target takes every package from wherever it is.
//
// # Link fallback and retries
//
// A package that cannot move — permission denied, a file held open, an I/O
// error, space gone, an old folder that cannot be removed, a source that
// does not match its manifest — stays whole where it is, and a link
// (symlink; junction on Windows) to it is made at Dest under a link entry:
// the link is created and its folder synced, the index switched to the
// same folder with that link, a link at an older target removed, the entry
// closed. The attempt ends with some-not-moved and wharf.RelocationWarning.
//
// A retry (Request.Retry) touches only packages behind a link. The link is
// replaced by the real folder without Dest ever missing: the package is
// staged at Temp (by rename on the same volume, at step stage-rename, or by
// the verified copy), then Temp and the link at Dest are exchanged
// atomically (renameat2 RENAME_EXCHANGE), the index switched, and the old
// link (now at Temp) and the old folder removed. Where the OS cannot
// exchange (Windows, some filesystems), the link is removed and Temp
// renamed to Dest, leaving Dest missing for a moment; a crash between the
// two is finished by Recover from staged.
//
// # Serving while moving
//
// Serve a package from its index Folder. A copied package stays at its old
// folder until the switch, so it is served throughout. A renamed package
// (same volume) leaves its old folder with the rename and is switched a
// few system calls and state-DB commits later; a request that finds its
// folder missing in that window should look the package up again.
//
// # Journal
//
// Entries and what Recover does with each, from what is on disk:
//
//	move, rename        Dest is a folder and Source is gone: the rename happened;
//	                    sync, switch, drop the old link, close. Otherwise the
//	                    package is at Source: restore the index there, close.
//	move, stage-rename  Temp is a folder and Source is gone: advance to staged
//	                    and go on from there. Otherwise restore, close.
//	move, copy          discard Temp (a partial copy), close; the package is
//	                    still whole at Source and the index never changed.
//	move, staged        place Temp at Dest if not done (rename or exchange), switch,
//	                    remove the old link and folder, close. If neither Temp nor
//	                    Dest holds the package (a crash undid the staging rename),
//	                    it is at Source: restore, close.
//	link, link          the link exists: sync, switch, drop the older link, close.
//	                    Otherwise restore the index, close.
//	root, rename        Dest is a folder and Source is gone: the root moved;
//	                    switch its packages (SetRoot), close. Source is there:
//	                    it did not; close.
//	leftover, remove    rename Path to Trash if set, remove it, sync, close; if it
//	                    still cannot be removed, keep the entry.
//
// Every step is idempotent and decided from the disk, so Recover may stop
// anywhere and run again; on a store with no open entry it changes
// nothing. Run calls it first. The crash-point matrix test crashes a whole
// attempt at every file-system operation and checks these claims.
//
// # Reporting
//
// Run returns a [Result]: the status bits of SPEC §6.3 (the caller adds
// retries-exhausted), the plan, counts, and every package linked or failed
// with its cause. Options.OnPackage and Options.OnProgress, and
// [Engine.Progress], give per-package results and byte and package
// counters while it runs (for the Package Location Status event, an ETA
// and metrics). Options.Limiter throttles copied bytes.
package relocate
