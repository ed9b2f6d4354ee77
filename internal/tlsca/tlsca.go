// Package tlsca builds the TLS trust of Wharf's HTTPS clients: the
// system's root certificates plus, when given, the certificates of one PEM
// file (--ca FILE), the authority that signed a Notification Server's or a
// Package Server's certificate in a site without a public one.
package tlsca

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"
)

// Pool returns the system's root certificates with those of the PEM file
// added; with no file, nil (Go's default: the system roots). A file that
// cannot be read or holds no certificate is an error.
func Pool(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool() // no system pool on this machine: the file alone
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// Transport returns a clone of http.DefaultTransport trusting the system
// roots and the certificates of file (Pool), with responseHeader as its
// ResponseHeaderTimeout when above 0.
func Transport(file string, responseHeader time.Duration) (*http.Transport, error) {
	pool, err := Pool(file)
	if err != nil {
		return nil, err
	}
	base, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, errors.New("tlsca: http.DefaultTransport is not an *http.Transport")
	}
	t := base.Clone()
	if pool != nil {
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if responseHeader > 0 {
		t.ResponseHeaderTimeout = responseHeader
	}
	return t, nil
}
