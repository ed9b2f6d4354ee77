package wharf

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// PackageID identifies a package: a lowercase RFC 4122 version 4 UUID.
type PackageID string

// NewPackageID returns a fresh random package id.
func NewPackageID() PackageID {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("wharf: crypto/rand failed: " + err.Error())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return PackageID(h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32])
}

// ParsePackageID checks that s is a canonical lowercase UUID.
func ParsePackageID(s string) (PackageID, error) {
	if len(s) != 36 {
		return "", fmt.Errorf("invalid package id %q: want a UUID", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", fmt.Errorf("invalid package id %q: want a UUID", s)
			}
		default:
			if !isLowerHex(c) {
				return "", fmt.Errorf("invalid package id %q: want a lowercase UUID", s)
			}
		}
	}
	return PackageID(s), nil
}

func (id PackageID) String() string { return string(id) }

// Digest is the lowercase hex SHA-256 of some bytes.
type Digest string

// ParseDigest checks that s is 64 lowercase hex digits.
func ParseDigest(s string) (Digest, error) {
	if len(s) != 64 {
		return "", fmt.Errorf("invalid sha256 %q: want 64 hex digits", truncate(s, 80))
	}
	for i := 0; i < len(s); i++ {
		if !isLowerHex(s[i]) {
			return "", fmt.Errorf("invalid sha256 %q: want 64 lowercase hex digits", truncate(s, 80))
		}
	}
	return Digest(s), nil
}

func (d Digest) String() string { return string(d) }

// ServerName names a Package Server: 1 to 63 characters of letters, digits,
// '-', '_' and '.', starting with a letter or digit. Names compare
// case-insensitively and are stored in lowercase.
type ServerName string

// ParseServerName checks s and returns it in canonical (lowercase) form.
func ParseServerName(s string) (ServerName, error) {
	if s == "" {
		return "", errors.New("invalid server name: empty")
	}
	if len(s) > 63 {
		return "", fmt.Errorf("invalid server name %q: longer than 63 characters", truncate(s, 80))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			i > 0 && (c == '-' || c == '_' || c == '.')
		if !ok {
			return "", fmt.Errorf("invalid server name %q: use letters, digits, '-', '_' and '.'", truncate(s, 80))
		}
	}
	return ServerName(strings.ToLower(s)), nil
}

func (n ServerName) String() string { return string(n) }

func isLowerHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// File is one file of a package's manifest: its relative path ('/'-separated,
// valid per ValidateRelPath), its size and the SHA-256 of its content. It is
// the one domain type of a manifest file on both sides: the NS's catalog,
// the PS's state DB (which adds when the file was written) and the
// relocation engine; api.File is its wire form.
type File struct {
	Path   string
	Size   int64
	SHA256 Digest
}
