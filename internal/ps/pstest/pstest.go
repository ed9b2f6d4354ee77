// Package pstest holds test helpers of the Package Server: a logger that
// writes to t.Log, and Sum. The Notification Server of the Package
// Server's tests is the real one, run in-process by
// internal/testenv/nstest (with its fault knobs).
package pstest

import (
	"crypto/sha256"
	"encoding/hex"
)

// Sum returns the hex SHA-256 of data.
func Sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}
