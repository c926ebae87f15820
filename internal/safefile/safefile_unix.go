//go:build unix

package safefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// noFollow returns the open flags that refuse a symbolic link at the last
// element of a path (open fails with ELOOP), and keep a FIFO planted there
// from blocking the open (the file check then refuses it; regular files
// ignore O_NONBLOCK).
func noFollow(string) (flag int, link bool) { return syscall.O_NOFOLLOW | syscall.O_NONBLOCK, false }

func isLoop(err error) bool { return errors.Is(err, syscall.ELOOP) }

func checkOwner(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%w: %s: no owner information", ErrOwner, path)
	}
	if uid := int(st.Uid); uid != os.Geteuid() && uid != 0 {
		return fmt.Errorf("%w: %s belongs to uid %d, this process runs as uid %d", ErrOwner, path, uid, os.Geteuid())
	}
	return nil
}
