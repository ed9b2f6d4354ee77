// Package winsvc runs the Package Server as a Windows service: it installs
// and removes the service (golang.org/x/sys/windows/svc/mgr), starts and
// stops it, and runs `wharf ps serve` under the service control manager
// (svc.Run) so a Package Server runs unattended.
//
// What Install sets up:
//   - the service, started automatically at boot, running
//     `wharf.exe ps serve --service NAME <serve flags>` as LocalSystem;
//   - recovery actions: when the process dies or stops with an error, the
//     service control manager restarts it after 10 s, 30 s, then every
//     minute; the failure count resets after a day without failure
//     (FailureActionsOnNonCrashFailures is set, so an error return counts);
//   - an event source of the same name in the Application event log.
//
// What Run does: it reports StartPending, runs the serve function, reports
// Running (accepting Stop and Shutdown) once the function says it is ready
// (the Package Server serves), and on Stop or Shutdown cancels the
// function's context and waits for it to return — the daemon finishes its
// requests and journal entries — reporting StopPending with a wait hint
// meanwhile, then Stopped with exit code 0. A serve function that returns
// an error ends the service with service-specific exit code 1, which the
// recovery actions answer. Everything is logged to a file (JSON lines,
// rotated at 10 MiB, one old file kept) and, from Warn up plus the service's
// start and stop, to the event log.
//
// On other systems every function fails with ErrUnsupported: run
// `wharf ps serve` under systemd there.
package winsvc

import (
	"errors"
	"time"
)

// DefaultName is the service's name when none is given.
const DefaultName = "WharfPackageServer"

// ErrUnsupported is returned on systems without Windows services.
var ErrUnsupported = errors.New("no Windows services on this system; run `wharf ps serve` under systemd or another service manager")

// Config describes the service to install.
type Config struct {
	// Name is the service's name (sc.exe and the event source use it);
	// default DefaultName.
	Name string
	// DisplayName and Description are shown in services.msc.
	DisplayName, Description string
	// Exe is the absolute path of wharf.exe; Args the arguments it is
	// started with (`ps serve --service NAME ...`).
	Exe  string
	Args []string
	// Recovery are the delays before the service control manager restarts
	// a failed service: the first, second and later failures; default
	// 10 s, 30 s, 1 min. ResetAfter is the time without failure after
	// which the count starts again; default a day.
	Recovery   []time.Duration
	ResetAfter time.Duration
}

// StopTimeout bounds how long Stop waits for the service to stop, and the
// wait hint the service gives while stopping.
const StopTimeout = 60 * time.Second
