// Package archtest holds the test that enforces the dependency invariants
// of ARCHITECTURE.md (in the spirit of Tailscale's deptest): which package
// may import which, who speaks SQL, who touches the disk for package data.
// It has no code of its own; a change that breaks an invariant fails
// `go test ./internal/archtest`, naming the file and the import.
package archtest
