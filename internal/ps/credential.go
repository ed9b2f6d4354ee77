package ps

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/wharf-project/wharf/internal/durable"
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

// saveCredential writes the credential file atomically with mode 0600.
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
