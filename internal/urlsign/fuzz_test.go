package urlsign

import (
	"crypto/hmac"
	"net/url"
	"strconv"
	"testing"
	"time"
)

// FuzzSignedURL: Check accepts a query only when its sig is the HMAC of
// the package and its exp under the key, and exp is not past; a query
// Query made is accepted until it expires; nothing panics.
func FuzzSignedURL(f *testing.F) {
	key := []byte("0123456789abcdef0123456789abcdef")
	id := "6f1c2a4e-0b1d-4c3e-9f00-0123456789ab"
	good := Query(key, id, time.Unix(1_900_000_000, 0))
	for _, q := range []string{good, "", "exp=1&sig=00", "exp=-1&sig=zz", "sig=" + good, good + "&exp=2", "exp=1900000000&exp=1&sig=ab",
		"exp=99999999999999999999&sig=00", "%zz", "exp=1900000000&sig=" + sign(key, id, "1900000000")[:10]} {
		f.Add(q, id, int64(1_800_000_000))
	}
	f.Fuzz(func(t *testing.T, raw, pkg string, now int64) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		at := time.Unix(now, 0)
		if Check(key, pkg, q, at) == nil {
			exp, err := strconv.ParseInt(q.Get("exp"), 10, 64)
			if err != nil || at.Unix() > exp {
				t.Fatalf("accepted %q at %d: exp %q not valid or past", raw, now, q.Get("exp"))
			}
			if !hmac.Equal([]byte(q.Get("sig")), []byte(sign(key, pkg, q.Get("exp")))) && !equalHexFold(q.Get("sig"), sign(key, pkg, q.Get("exp"))) {
				t.Fatalf("accepted %q for package %q: not the signature", raw, pkg)
			}
			if Check([]byte("another key of thirty-two bytes!"), pkg, q, at) == nil {
				t.Fatalf("accepted %q under another key", raw)
			}
		}
		// What Query signs is accepted before it expires, and refused after.
		exp := time.Unix(now, 0).Add(time.Hour)
		signed, _ := url.ParseQuery(Query(key, pkg, exp))
		if err := Check(key, pkg, signed, exp.Add(-time.Minute)); err != nil && now > -1e15 && now < 1e15 {
			t.Fatalf("Query's own signature refused: %v", err)
		}
		if err := Check(key, pkg, signed, exp.Add(time.Second)); err == nil {
			t.Fatal("an expired signature accepted")
		}
	})
}

// equalHexFold: hex.DecodeString takes upper-case digits too, so a
// signature may differ from sign's in case only.
func equalHexFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'F' {
			x += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
