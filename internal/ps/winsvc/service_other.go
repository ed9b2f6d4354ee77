//go:build !windows

package winsvc

import (
	"context"
	"log/slog"
)

// Install fails: see ErrUnsupported.
func Install(Config) (string, error) { return "", ErrUnsupported }

// Uninstall fails: see ErrUnsupported.
func Uninstall(string) error { return ErrUnsupported }

// Start fails: see ErrUnsupported.
func Start(string) error { return ErrUnsupported }

// Stop fails: see ErrUnsupported.
func Stop(string) error { return ErrUnsupported }

// State fails: see ErrUnsupported.
func State(string) (string, error) { return "", ErrUnsupported }

// IsService reports false: there are no Windows services here.
func IsService() (bool, error) { return false, nil }

// Run fails: see ErrUnsupported.
func Run(string, string, slog.Level, func(context.Context, *slog.Logger, func()) error) error {
	return ErrUnsupported
}
