//go:build !windows

package sdnotify

import (
	"fmt"
	"net"
)

// send writes state as one datagram to the unix socket addr ('@' first:
// the abstract namespace).
func send(addr, state string) error {
	name := addr
	if name[0] == '@' {
		name = "\x00" + name[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify systemd at %s: %w", addr, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("notify systemd at %s: %w", addr, err)
	}
	return nil
}
