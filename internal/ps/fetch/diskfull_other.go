//go:build !unix && !windows

package fetch

// diskFull reports whether err says the volume is full; Package Servers run
// on Linux and Windows only, so elsewhere it never does.
func diskFull(error) bool { return false }
