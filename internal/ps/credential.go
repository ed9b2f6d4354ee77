package ps

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/durable"
	"github.com/wharf-project/wharf/internal/wharf"
)

// CredentialName is the credential file's name in the install dir.
const CredentialName = "credential.json"

// credential is what enrollment gave this PS, kept in
// <install dir>/credential.json with mode 0600.
type credential struct {
	NSURL      string    `json:"ns_url"`
	Name       string    `json:"name"`
	Credential string    `json:"credential"`
	SigningKey string    `json:"signing_key"` // hex
	EnrolledAt time.Time `json:"enrolled_at"`
	// Pending is a credential this PS sent the NS to replace Credential
	// (a rotation), kept before it was sent: when the NS took it but the
	// PS stopped before recording that, the NS refuses Credential and the
	// PS switches to Pending.
	Pending string `json:"pending_credential,omitempty"`
}

// LogValue keeps the secrets out of logs.
func (c credential) LogValue() slog.Value {
	return slog.GroupValue(slog.String("ns", c.NSURL), slog.String("name", c.Name))
}

func (c credential) key() ([]byte, error) {
	k, err := hex.DecodeString(c.SigningKey)
	if err != nil || len(k) == 0 {
		return nil, fmt.Errorf("credential: invalid signing key")
	}
	return k, nil
}

// loadCredential reads the credential file; ok is false when there is none.
func loadCredential(installDir string) (c credential, ok bool, err error) {
	path := filepath.Join(installDir, CredentialName)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("read credential: %w", err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, false, fmt.Errorf("read credential %s: %w", path, err)
	}
	if c.Name == "" || c.Credential == "" || c.NSURL == "" {
		return c, false, fmt.Errorf("read credential %s: incomplete (name, credential and ns_url are needed)", path)
	}
	if _, err := c.key(); err != nil {
		return c, false, fmt.Errorf("read credential %s: %w", path, err)
	}
	return c, true, nil
}

// saveCredential writes the credential file atomically with mode 0600
// (temp file, fsync, rename, folder fsync).
func saveCredential(installDir string, c credential) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := durable.WriteFile(filepath.Join(installDir, CredentialName), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("save credential: %w", err)
	}
	return nil
}

// keyring holds the credential in effect and replaces it when the NS asks
// (a rotate-credential task): the new credential is kept in the file as
// pending (fsynced) before it is sent, then sent with the old one, and
// made the credential once the NS took it. A crash anywhere leaves the
// file naming one the NS takes: the old one until the NS answered, the
// pending one after (the poller switches to it when the old one is
// refused: switchToPending).
type keyring struct {
	dir    string
	client *apiclient.Client
	clock  func() time.Time
	log    *slog.Logger

	requests chan string // rotate-credential tasks to answer

	mu       sync.Mutex
	cred     credential
	done     map[string]bool // rotate-credential tasks answered
	switched time.Time       // when the credential in effect last changed
	retried  bool            // a refusal right after the switch was retried once
}

func newKeyring(dir string, cred credential, client *apiclient.Client, now func() time.Time, log *slog.Logger) *keyring {
	return &keyring{dir: dir, cred: cred, client: client, clock: now, log: log.With("component", "credential"),
		requests: make(chan string, 1), done: map[string]bool{}}
}

// rotate asks for a rotate-credential task to be answered (by Serve); a
// task answered already, or asked while another runs, is ignored (the NS
// sends the task with every configuration until it is answered). It never
// blocks.
func (k *keyring) rotate(taskID string) {
	k.mu.Lock()
	skip := k.done[taskID]
	k.mu.Unlock()
	if skip {
		return
	}
	select {
	case k.requests <- taskID:
	default:
	}
}

// Serve answers the rotate-credential tasks rotate hands it, one at a
// time, until ctx ends.
func (k *keyring) Serve(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case taskID := <-k.requests:
			k.mu.Lock()
			skip := k.done[taskID]
			k.mu.Unlock()
			if skip {
				continue
			}
			if err := k.replace(ctx, taskID); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				k.log.Warn("replace the credential (the NS asks again with its next configuration)", "task", taskID, "err", err)
				continue
			}
			k.mu.Lock()
			k.done[taskID] = true
			k.mu.Unlock()
		}
	}
}

// replace makes a new credential, keeps it as pending, sends it, and
// makes it the credential in effect.
func (k *keyring) replace(ctx context.Context, taskID string) error {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	next := "wharf-ps-" + base64.RawURLEncoding.EncodeToString(b)
	k.mu.Lock()
	c := k.cred
	k.mu.Unlock()
	c.Pending = next
	if err := saveCredential(k.dir, c); err != nil {
		return err
	}
	k.mu.Lock()
	k.cred = c
	k.mu.Unlock()
	if err := k.client.RotateCredential(ctx, c.Name, next, taskID); err != nil {
		if errors.Is(err, wharf.ErrUnauthorized) && k.switchToPending() {
			return nil // the NS took it on an earlier try whose answer was lost
		}
		return err
	}
	if !k.promote(next) {
		return errors.New("credential changed while it was replaced")
	}
	k.log.Info("credential replaced; the old one no longer works", "task", taskID)
	return nil
}

// promote makes pending the credential in effect (the client's token and
// the file); false when pending is no longer the pending one.
func (k *keyring) promote(pending string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cred.Pending != pending || pending == "" {
		return false
	}
	c := k.cred
	c.Credential, c.Pending = pending, ""
	k.client.SetToken(pending)
	k.cred, k.switched, k.retried = c, k.clock(), false
	if err := saveCredential(k.dir, c); err != nil {
		// In effect anyway; the file still names it as pending, which a
		// restart switches to when the old one is refused.
		k.log.Error("record the new credential", "err", err)
	}
	return true
}

// switchToPending is the poller's answer to a refused credential: when a
// pending credential is kept it becomes the one in effect; when the
// credential changed a moment ago, the refusal was of a request sent
// before (once). Either way the poll is worth trying again at once
// (true); otherwise the refusal stands (false).
func (k *keyring) switchToPending() bool {
	k.mu.Lock()
	pending := k.cred.Pending
	k.mu.Unlock()
	if pending != "" && k.promote(pending) {
		k.log.Warn("the NS took this server's new credential before it was recorded; using it now")
		return true
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.switched.IsZero() && k.clock().Sub(k.switched) < 10*time.Second && !k.retried {
		k.retried = true
		return true
	}
	return false
}
