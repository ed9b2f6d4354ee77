package durable

import (
	"os"
	"syscall"
)

const isWindows = true

// syncDir only checks that dir is a folder: Windows cannot open a folder
// for FlushFileBuffers without backup privileges, and NTFS journals folder
// changes itself.
func syncDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return syscall.ENOTDIR
	}
	return nil
}

func syncOpenDir(*os.File) error { return nil }
