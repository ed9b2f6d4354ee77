//go:build !windows

package durable

import "os"

const isWindows = false

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncOpenDir(f *os.File) error { return f.Sync() }
