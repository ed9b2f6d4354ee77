package sdnotify

import "errors"

// send: Windows has no systemd; its service control manager is told by
// internal/ps/winsvc.
func send(addr, state string) error {
	return errors.New("NOTIFY_SOCKET is set, but systemd notifications are a Linux service manager's")
}
