// Package client downloads packages from Package Servers: it is `wharf get`.
//
// # Resolving a package
//
// The package is named by its id, or by its name with an optional @VERSION
// ("demo", "demo@1.2"). The name ends at the last '@', so a name may contain
// '@' and a version may not. A name without a version means the newest
// package of that name by its created_at time (the time the NS catalogued
// it, not the order of the version strings); two packages created at the
// same instant are ordered by id so the choice is stable. A string that is a
// package id (a lowercase UUID) is looked up as an id first and, when no
// package has that id, as a name.
//
// The client asks the Notification Server, with the admin token, for the
// package (its manifest: every file's relative path, size and SHA-256) and
// for its codebases: the Package Servers that report it ready. A file is
// fetched from a codebase at its URL followed by the file's relative path,
// each element escaped with url.PathEscape, followed by "?" and the
// codebase's query when it has one (the expiry and signature of a signed
// package).
//
// # What is written, and where
//
// Every manifest path is checked with wharf.ValidateFileSet before anything
// touches the disk, and every file operation goes through an os.Root opened
// on the destination, so nothing can be written outside it, not even through
// a symbolic link already there.
//
// Each file is downloaded into a temporary file in a staging folder
// <dest>/.wharf-get-<random>/ (named after the file's index in the
// manifest), hashed while it is written, checked for its exact size and
// SHA-256, fsynced, and only then renamed to its place. A file in the
// destination is therefore either as it was before or whole and verified,
// never partly written. At the end the folders that received files are fsynced and the
// staging folder is removed, also when the download failed; only a process
// that is killed leaves it behind, and it can then be deleted by hand.
//
// A file that already exists in the destination with the right size and
// SHA-256 is not downloaded again, so running the same command twice is
// cheap and finishes an interrupted download.
//
// # Failover and resume
//
// Files are downloaded in parallel, Options.Parallel at a time. Each file
// tries the codebases in the NS's order, except that a codebase whose last
// attempt failed in transport or with a 5xx goes after the others. When a
// Package Server fails in the middle of a file (connection reset, body ended
// early, a 5xx answer, no byte for Options.StallTimeout), the download goes
// on from the bytes already received with a "Range: bytes=N-" request to the
// next codebase, keeping the running hash. A server that does not honour the
// range (no 206, or a Content-Range that does not run from N to the file's
// end) makes the file restart from zero.
//
// A 4xx answer (403, 404) or a wrong size rules that codebase out for that
// file. A SHA-256 mismatch throws the bytes away and rules out every codebase
// that delivered some of them, since any of them may be the wrong one.
//
// After every codebase still in the running was tried, the client pauses
// (Options.Backoff, through Options.Sleep) and goes round again, at most
// Options.Rounds times; then the file, and so the whole download, fails with
// an error naming the file and what each server did. The first failed file
// stops the others; files already in place stay there, whole, for the next
// run. The stall timeout is the only timer on the wall clock.
package client
