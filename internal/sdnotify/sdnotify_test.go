//go:build !windows

package sdnotify

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

// listen makes a datagram socket as systemd does and returns its address.
func listen(t *testing.T, abstract bool) (string, *net.UnixConn) {
	t.Helper()
	name := filepath.Join(t.TempDir(), "notify.sock")
	addr := name
	if abstract {
		name = "\x00wharf-sdnotify-test-" + filepath.Base(t.TempDir())
		addr = "@" + name[1:]
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return addr, conn
}

func read(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotify(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		addr, conn := listen(t, abstract)
		t.Setenv(Socket, addr)
		if sent, err := Ready(); !sent || err != nil {
			t.Fatalf("Ready to %q: %v %v", addr, sent, err)
		}
		if got := read(t, conn); got != "READY=1" {
			t.Errorf("got %q, want READY=1", got)
		}
		if sent, err := Stopping(); !sent || err != nil {
			t.Fatalf("Stopping: %v %v", sent, err)
		}
		if got := read(t, conn); got != "STOPPING=1" {
			t.Errorf("got %q, want STOPPING=1", got)
		}
	}
}

func TestNotifyWithoutSystemd(t *testing.T) {
	t.Setenv(Socket, "")
	if sent, err := Ready(); sent || err != nil {
		t.Errorf("without NOTIFY_SOCKET: sent %v, err %v", sent, err)
	}
	t.Setenv(Socket, filepath.Join(t.TempDir(), "nobody-listens"))
	if sent, err := Ready(); sent || err == nil {
		t.Errorf("to a socket nobody listens on: sent %v, err %v", sent, err)
	}
}
