package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/wharf"
)

// TestJournalGroupCommit writes journal entries from many goroutines at
// once (they share transactions), with some of them failing, and checks
// that each write took effect exactly when it succeeded, and that every
// one is durable across a reopen.
func TestJournalGroupCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ps.db")
	st := openStore(t, path)
	j := st.RelocationJournal()
	ctx := context.Background()
	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("k%03d", i)
			if err := j.Begin(ctx, relocate.Entry{Key: key, Package: wharf.PackageID(key), Step: relocate.StepRename}); err != nil {
				errs[i] = err
				return
			}
			if i%10 == 0 {
				// A second Begin of an open key fails alone; it must not
				// undo the writes it shares a transaction with.
				if err := j.Begin(ctx, relocate.Entry{Key: key}); !errors.Is(err, wharf.ErrExists) {
					errs[i] = fmt.Errorf("second begin of %s: %v, want ErrExists", key, err)
					return
				}
			}
			if err := j.Advance(ctx, key, relocate.StepStaged); err != nil {
				errs[i] = err
				return
			}
			if i%2 == 0 {
				errs[i] = j.Close(ctx, key)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	if err := j.Advance(ctx, "missing", relocate.StepStaged); !errors.Is(err, wharf.ErrNotFound) {
		t.Fatalf("advance of a missing entry: %v, want ErrNotFound", err)
	}
	st.Close()

	st = openStore(t, path)
	open, err := st.RelocationJournal().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != n/2 {
		t.Fatalf("%d entries open after a reopen, want %d", len(open), n/2)
	}
	for _, e := range open {
		if e.Step != relocate.StepStaged {
			t.Fatalf("entry %s at step %v after a reopen, want staged", e.Key, e.Step)
		}
	}
}
