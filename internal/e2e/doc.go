// Package e2e holds Wharf's end-to-end tests: they build the wharf binary
// and drive real processes (NS, PSs, clients) over loopback, as an
// administrator would. The package has no code of its own beyond helpers.
package e2e
