// Package urlsign signs and checks the download URLs of signed packages. The
// Notification Server mints a signature with the key it shares with one
// Package Server; that PS checks it. One signature covers every file of one
// package until it expires.
package urlsign

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"strconv"
	"time"
)

// Errors returned by Check.
var (
	ErrMissing = errors.New("missing signature")
	ErrInvalid = errors.New("invalid signature")
	ErrExpired = errors.New("signature expired")
)

// Query returns the query string ("exp=...&sig=...") that grants access to
// every file of the package until exp.
func Query(key []byte, packageID string, exp time.Time) string {
	e := strconv.FormatInt(exp.Unix(), 10)
	return url.Values{"exp": {e}, "sig": {sign(key, packageID, e)}}.Encode()
}

// Check verifies the exp and sig parameters of q for the package at now.
func Check(key []byte, packageID string, q url.Values, now time.Time) error {
	e, s := q.Get("exp"), q.Get("sig")
	if e == "" || s == "" {
		return ErrMissing
	}
	exp, err := strconv.ParseInt(e, 10, 64)
	if err != nil {
		return ErrInvalid
	}
	got, err := hex.DecodeString(s)
	if err != nil {
		return ErrInvalid
	}
	want, _ := hex.DecodeString(sign(key, packageID, e))
	if !hmac.Equal(got, want) {
		return ErrInvalid
	}
	if now.Unix() > exp {
		return ErrExpired
	}
	return nil
}

func sign(key []byte, packageID, exp string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(packageID + "\n" + exp))
	return hex.EncodeToString(m.Sum(nil))
}
