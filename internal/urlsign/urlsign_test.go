package urlsign

import (
	"errors"
	"net/url"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	id := "6f1c2a4e-0b1d-4c3e-9f00-0123456789ab"
	good, _ := url.ParseQuery(Query(key, id, now.Add(time.Hour)))
	if err := Check(key, id, good, now); err != nil {
		t.Fatalf("valid signature refused: %v", err)
	}
	tampered := url.Values{"exp": {good.Get("exp") + "0"}, "sig": good["sig"]}
	otherPkg := "6f1c2a4e-0b1d-4c3e-9f00-0123456789ac"
	cases := []struct {
		name string
		key  []byte
		id   string
		q    url.Values
		now  time.Time
		want error
	}{
		{"missing", key, id, url.Values{}, now, ErrMissing},
		{"tampered expiry", key, id, tampered, now, ErrInvalid},
		{"other package", key, otherPkg, good, now, ErrInvalid},
		{"other key", []byte("another key"), id, good, now, ErrInvalid},
		{"not hex", key, id, url.Values{"exp": good["exp"], "sig": {"zz"}}, now, ErrInvalid},
		{"expired", key, id, good, now.Add(2 * time.Hour), ErrExpired},
	}
	for _, c := range cases {
		if err := Check(c.key, c.id, c.q, c.now); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}
