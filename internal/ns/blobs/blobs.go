// Package blobs is the Notification Server's content-addressed blob store on
// local disk: every package file's bytes, named by their SHA-256.
//
// # On-disk layout
//
//	<dir>/sha256/ab/abcdef...   one file per blob, named by its digest
//	<dir>/tmp/                  uploads in progress; emptied at start
//
// # Protocol
//
// Put streams the body into a temp file under tmp/, hashing while it writes,
// then checks size and digest, fsyncs the file, renames it into place
// without replacing an existing blob, and fsyncs the folder. A blob is thus
// whole or absent, and a crash leaves at most a temp file, removed by the
// next Open.
package blobs

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/wharf-project/wharf/internal/durable"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Disk is a blob store in one local folder. It is safe for concurrent use.
type Disk struct {
	dir string
}

// Open opens (creating if needed) the blob store in dir and removes
// leftovers of interrupted uploads.
func Open(dir string) (*Disk, error) {
	d := &Disk{dir: dir}
	if err := os.MkdirAll(filepath.Join(dir, "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	if err := os.RemoveAll(d.tmpDir()); err != nil {
		return nil, fmt.Errorf("open blob store: clean %s: %w", d.tmpDir(), err)
	}
	if err := os.MkdirAll(d.tmpDir(), 0o755); err != nil {
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	return d, nil
}

func (d *Disk) tmpDir() string { return filepath.Join(d.dir, "tmp") }

func (d *Disk) path(dg wharf.Digest) string {
	return filepath.Join(d.dir, "sha256", string(dg[:2]), string(dg))
}

// Size returns the size of a stored blob, or an error wrapping
// wharf.ErrNotFound.
func (d *Disk) Size(dg wharf.Digest) (int64, error) {
	fi, err := os.Stat(d.path(dg))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("blob %s: %w", dg, wharf.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("stat blob %s: %w", dg, err)
	}
	return fi.Size(), nil
}

// Open opens a stored blob for reading; the caller closes it.
func (d *Disk) Open(dg wharf.Digest) (io.ReadSeekCloser, error) {
	f, err := os.Open(d.path(dg))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", dg, wharf.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", dg, err)
	}
	return f, nil
}

// ErrDigestMismatch is returned by Put when the bytes do not hash to the
// name they were uploaded under. It wraps wharf.ErrInvalid.
var ErrDigestMismatch = wharf.Errorf(wharf.ErrInvalid, "content does not match its sha256")

// Put stores exactly size bytes read from r as blob dg. It reports whether
// it stored them (false: the blob was there already, and the bytes sent
// again were checked against it). A body that is shorter or longer than
// size, or does not hash to dg, is discarded and answered with an error
// wrapping wharf.ErrInvalid (a body that ends early, or whose reading
// fails, is the sender's fault too); only a failure of the disk is not.
func (d *Disk) Put(dg wharf.Digest, r io.Reader, size int64) (created bool, err error) {
	body := &bodyReader{r: r}
	if have, err := d.Size(dg); err == nil {
		// Known already: the upload must still be the same bytes, or the
		// client that sent them learns its file is not what it claims.
		if size != have {
			return false, wharf.Errorf(wharf.ErrInvalid, "put blob %s: %d bytes, but the stored blob has %d", dg, size, have)
		}
		h := sha256.New()
		n, err := io.Copy(h, io.LimitReader(body, size+1))
		if err := body.check(dg, err, n, size); err != nil {
			return false, err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != string(dg) {
			return false, fmt.Errorf("put blob %s: body hashes to %s: %w", dg, got, ErrDigestMismatch)
		}
		return false, nil
	}
	tmp, err := os.CreateTemp(d.tmpDir(), string(dg[:16])+"-*")
	if err != nil {
		return false, fmt.Errorf("put blob %s: %w", dg, err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(body, size+1))
	if err := body.check(dg, err, n, size); err != nil {
		return false, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != string(dg) {
		return false, fmt.Errorf("put blob %s: body hashes to %s: %w", dg, got, ErrDigestMismatch)
	}
	if err := tmp.Sync(); err != nil {
		return false, fmt.Errorf("put blob %s: sync: %w", dg, err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("put blob %s: close: %w", dg, err)
	}
	final := d.path(dg)
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return false, fmt.Errorf("put blob %s: %w", dg, err)
	}
	// os.Link never replaces an existing file, so two racing uploads of the
	// same blob both succeed and keep one copy.
	if err := os.Link(tmp.Name(), final); err != nil && !errors.Is(err, fs.ErrExist) {
		return false, fmt.Errorf("put blob %s: link into place: %w", dg, err)
	} else if err != nil {
		return false, nil
	}
	if err := durable.SyncDir(filepath.Dir(final)); err != nil {
		return false, fmt.Errorf("put blob %s: %w", dg, err)
	}
	return true, nil
}

// Delete removes a blob; a missing blob is not an error.
func (d *Disk) Delete(dg wharf.Digest) error {
	if err := os.Remove(d.path(dg)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", dg, err)
	}
	return nil
}

// bodyReader remembers whether an error came from reading the body (the
// sender's fault) rather than from writing it (the disk's).
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// check turns the outcome of copying n bytes of a body of size bytes into
// Put's error: nil when all size bytes and no more came.
func (b *bodyReader) check(dg wharf.Digest, err error, n, size int64) error {
	switch {
	case err != nil && b.err != nil:
		return wharf.Errorf(wharf.ErrInvalid, "put blob %s: body cut short or failed after %d of %d bytes: %v", dg, n, size, b.err)
	case err != nil:
		return fmt.Errorf("put blob %s: receive: %w", dg, err)
	case n != size:
		return wharf.Errorf(wharf.ErrInvalid, "put blob %s: got %d bytes, want %d", dg, n, size)
	}
	return nil
}
