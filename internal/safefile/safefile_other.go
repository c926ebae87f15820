//go:build !unix

package safefile

import (
	"io/fs"
	"os"
)

// noFollow has no open flag to offer here: it reports a symbolic link
// found at path before the open.
func noFollow(path string) (flag int, link bool) {
	fi, err := os.Lstat(path)
	return 0, err == nil && fi.Mode()&fs.ModeSymlink != 0
}

func isLoop(error) bool { return false }

// checkOwner: this platform has no Unix owner to check.
func checkOwner(string, fs.FileInfo) error { return nil }
