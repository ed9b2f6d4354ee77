// Package sdnotify tells systemd how a service started with Type=notify is
// doing (the sd_notify protocol): READY=1 once it serves, STOPPING=1 when
// it begins to stop, as one datagram to the AF_UNIX socket named by the
// NOTIFY_SOCKET environment variable (a path, or an abstract socket
// written with a leading '@'). Without NOTIFY_SOCKET — the process was not
// started by systemd, or not with Type=notify — it sends nothing. It is a
// leaf: it imports nothing of the module, and needs no cgo and no library.
package sdnotify

import "os"

// Socket is the environment variable that names systemd's notification
// socket.
const Socket = "NOTIFY_SOCKET"

// Ready tells systemd that the service serves (READY=1): a unit with
// Type=notify counts as started only then. It reports whether a
// notification was sent.
func Ready() (bool, error) { return Notify("READY=1") }

// Stopping tells systemd that the service is shutting down (STOPPING=1).
func Stopping() (bool, error) { return Notify("STOPPING=1") }

// Notify sends state (newline-separated VAR=value assignments, as
// sd_notify(3) describes) to the socket NOTIFY_SOCKET names. It reports
// false and no error when the variable is not set.
func Notify(state string) (bool, error) {
	addr := os.Getenv(Socket)
	if addr == "" {
		return false, nil
	}
	if err := send(addr, state); err != nil {
		return false, err
	}
	return true, nil
}
