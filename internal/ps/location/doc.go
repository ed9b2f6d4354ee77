// Package location keeps a running Package Server's store at the storage
// location its policy names: it drives the relocation engine (package
// relocate), deciding when an attempt runs, counts the automatic retries,
// keeps its counters in the state DB, tells the placer where new downloads
// go, pauses downloads and serving in exclusive mode, retires the store
// roots an attempt emptied, and reports every attempt to the Notification
// Server as a Package Location Status event (SPEC §6.2–§6.7).
//
// # Decisions and effects
//
// The rules below are one pure function (decide, in decide.go), tested as
// a table; the Controller gathers its inputs and carries out what it says
// (attempt.go runs an attempt, events.go builds the events, tasks.go
// answers the NS's server tasks, retire.go removes emptied roots). Apply,
// called by the configuration poll loop, only records what a configuration
// says and wakes the controller: the loop never waits on it.
//
// # When an attempt runs
//
// The [Controller] compares, whenever something changes, the location the
// policy asks for (Config.Location, resolved: "default" is
// <install dir>/Package Delivery) with its persisted state:
//
//   - StoragePath, the location in effect: where the store is, and what
//     `wharf ps status` and the events report after a success or a warning;
//   - Target, where the store is moving or last moved to (the target of the
//     last attempt that got past its prerequisites);
//   - LastTried, the target of the last attempt, refused ones included;
//   - Running (with the kind of attempt), set while an attempt is under way;
//   - AttemptsDone and NextRetry, the automatic retries.
//
// In that order, first match wins:
//
//  1. An attempt was under way when the PS stopped (Running): it is
//     resumed — unless the policy names another location now, which starts
//     a new attempt there.
//  2. A manual retry is pending (`wharf ps retry-relocation`, or the NS's
//     retry-relocation task): a manual attempt (status bit manual, never
//     counted) toward the policy's location. It touches only the packages
//     behind a link when the store is at that location already, else every
//     package.
//  3. The policy's location differs from Target: a new attempt there (the
//     automatic-retry counter starts again at 0) — unless the last attempt
//     toward it was refused by a prerequisite: that one waits for a manual
//     retry or another policy change, not to flood the NS with refusals.
//  4. Target differs from StoragePath (an attempt was canceled or failed
//     half-way): the attempt toward Target runs again, after a backoff when
//     it failed.
//  5. A retry is due (NextRetry, on the injected clock): an automatic
//     attempt (AttemptsDone+1) that touches only the packages behind a link.
//
// An attempt that ends with some packages behind links (some-not-moved)
// schedules the next automatic retry relocation.interval later while
// AttemptsDone < relocation.max_attempts; when they are used up the status
// carries retries-exhausted. A manual attempt does not count but does
// schedule the next automatic one if any is left.
//
// When the policy names another location while an attempt runs, the
// attempt is canceled (the engine stops between packages) and a new one
// starts toward the new location, taking every package from wherever it is.
//
// # New downloads
//
// The placer (package place) is the one owner of where new downloads go
// and of pausing them. When a configuration names another location,
// placements wait (Placer.Pause(PauseDeciding)) until the controller
// decided about it, so a package the same configuration assigns is placed
// where it belongs. An attempt first asks the engine for a Plan. Only when
// every prerequisite passes does the placer's primary location become the
// target (so new downloads go there at once, never to the old location,
// and nothing is ever written into a refused target); then the engine
// runs, with removals of unassigned packages held back by the downloader
// ([Downloads]) until it ends.
// Downloads that were already under way finish where they were placed; a
// package that becomes ready outside the target during the attempt is
// moved by a further pass of the same attempt, and one that becomes ready
// in the old location after the attempt ended by a catch-up attempt (looked
// for at most every 30 s, when a configuration is applied).
//
// # Serving
//
// In online mode (the default) serving goes on throughout: each package is
// served from the folder the state DB names until its switch (see package
// serve for the short retry that covers a same-volume rename). In exclusive
// mode the controller pauses new placements (Placer.Pause(PauseExclusive))
// and makes package requests answer 503 with Retry-After ([Serving]) once
// the plan passed, and restores both when the attempt ends.
//
// # Retiring emptied roots
//
// After an attempt that ended with success or a warning, every store root
// its packages came from that the state DB no longer names for any
// package's folder or link is retired (storeroot.Roots.Retire): its marker
// and empty temporary folders go, and the folder itself when Wharf made
// it. So a consolidation leaves no empty "Package Delivery" behind on the
// volumes it emptied. The target of an attempt canceled for another
// location is retired the same way when nothing stayed there. A root that
// holds anything else — a package left behind a link, somebody else's
// file, a download under way — stays as it is.
//
// # Events
//
// Every attempt, a refused one included, ends with a Package Location
// Status event (api.LocationStatus, SPEC §6.7): the target, its volume's
// size and free space (volume.Facts, free = what an unprivileged writer may
// use), the MiB of this PS's packages on that volume and the MiB it needs
// for all of them, the time of the attempt, the status bits, the automatic
// attempts done and allowed, the prerequisites' verdicts and each package's
// state (moved, linked with its reason, failed, pending). While an attempt
// moves packages, an event with Progress (and the in-progress bit) goes out
// at most once per ProgressInterval. The last event that ended an attempt
// is kept in the state DB and sent again after a restart until the NS took
// it.
//
// # Server tasks
//
// Config.Tasks are the NS's pending server tasks: retry-relocation queues a
// manual retry; check-location evaluates a path with the engine's Plan —
// with the very request an attempt there would use, so each verdict is the
// one the relocation then reaches — and answers with it
// (api.LocationPlan). Each task is answered once.
package location
