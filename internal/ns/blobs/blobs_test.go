package blobs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wharf-project/wharf/internal/wharf"
)

func digestOf(b []byte) wharf.Digest {
	s := sha256.Sum256(b)
	return wharf.Digest(hex.EncodeToString(s[:]))
}

func TestPutGet(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("wharf"), 10000)
	dg := digestOf(body)
	if _, err := d.Size(dg); !errors.Is(err, wharf.ErrNotFound) {
		t.Fatalf("Size of missing blob: got %v, want ErrNotFound", err)
	}
	created, err := d.Put(dg, bytes.NewReader(body), int64(len(body)))
	if err != nil || !created {
		t.Fatalf("Put: created=%v err=%v", created, err)
	}
	created, err = d.Put(dg, bytes.NewReader(body), int64(len(body)))
	if err != nil || created {
		t.Fatalf("second Put: created=%v err=%v, want false, nil", created, err)
	}
	f, err := d.Open(dg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, _ := io.ReadAll(f)
	if !bytes.Equal(got, body) {
		t.Fatal("read back different bytes")
	}
	if n, _ := d.Size(dg); n != int64(len(body)) {
		t.Fatalf("Size: got %d, want %d", n, len(body))
	}
}

func TestPutRefusesBadBodies(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("the real content")
	dg := digestOf(body)
	cases := []struct {
		name string
		body string
		size int64
		want error
	}{
		{"other bytes", "other content!!!", int64(len(body)), ErrDigestMismatch},
		{"short body", "the real", int64(len(body)), wharf.ErrInvalid},
		{"long body", "the real content plus", int64(len(body)), wharf.ErrInvalid},
	}
	for _, c := range cases {
		_, err := d.Put(dg, strings.NewReader(c.body), c.size)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
		if _, err := d.Size(dg); !errors.Is(err, wharf.ErrNotFound) {
			t.Errorf("%s: blob stored after a refused upload", c.name)
		}
	}
	left, _ := os.ReadDir(filepath.Join(dir, "tmp"))
	if len(left) != 0 {
		t.Errorf("temp files left after refused uploads: %d", len(left))
	}
}

func TestConcurrentPutsOfOneBlob(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte{7}, 1<<20)
	dg := digestOf(body)
	var wg sync.WaitGroup
	var mu sync.Mutex
	createdCount := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := d.Put(dg, bytes.NewReader(body), int64(len(body)))
			if err != nil {
				t.Error(err)
			}
			if c {
				mu.Lock()
				createdCount++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if createdCount != 1 {
		t.Fatalf("blob created %d times, want 1", createdCount)
	}
}

func TestOpenCleansInterruptedUploads(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "tmp", "abc-123")
	if err := os.WriteFile(stale, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale upload survived Open: %v", err)
	}
}

// TestPutAgainChecksTheBytes: uploading a blob the store has already is
// checked like a first upload — other bytes, a cut body or another size
// are refused (ErrInvalid) and the stored blob stays as it was.
func TestPutAgainChecksTheBytes(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("stored once "), 1000)
	dg := digestOf(body)
	if _, err := d.Put(dg, bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	other := bytes.Repeat([]byte("STORED ONCE "), 1000)
	cases := []struct {
		name string
		r    io.Reader
		size int64
	}{
		{"other bytes, same size", bytes.NewReader(other), int64(len(other))},
		{"other size", bytes.NewReader(body[:100]), 100},
		{"cut short", bytes.NewReader(body[:len(body)-1]), int64(len(body))},
		{"failing reader", io.MultiReader(bytes.NewReader(body[:10]), iotestErr{}), int64(len(body))},
		{"longer", io.MultiReader(bytes.NewReader(body), strings.NewReader("x")), int64(len(body))},
	}
	for _, c := range cases {
		created, err := d.Put(dg, c.r, c.size)
		if created || !errors.Is(err, wharf.ErrInvalid) {
			t.Errorf("%s: Put = %v, %v; want false and ErrInvalid", c.name, created, err)
		}
	}
	f, err := d.Open(dg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, _ := io.ReadAll(f); !bytes.Equal(got, body) {
		t.Fatal("the stored blob changed")
	}
}

// TestPutCutShortIsInvalid: a first upload whose body ends early or fails
// is the sender's fault (ErrInvalid), and nothing is kept.
func TestPutCutShortIsInvalid(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("some content")
	dg := digestOf(body)
	if _, err := d.Put(dg, io.MultiReader(bytes.NewReader(body[:4]), iotestErr{}), int64(len(body))); !errors.Is(err, wharf.ErrInvalid) {
		t.Fatalf("Put with a failing body = %v, want ErrInvalid", err)
	}
	if _, err := d.Size(dg); !errors.Is(err, wharf.ErrNotFound) {
		t.Fatalf("after a failed Put: Size = %v, want ErrNotFound", err)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) != 0 {
		t.Fatalf("temp files left: %v", left)
	}
}

// iotestErr fails every read, as a body whose connection broke.
type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }
