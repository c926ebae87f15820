// Package safefile opens the files that hold keys and audit evidence
// (filestore's store and lock files, audit's hash chain) so that nobody but
// their owner can have planted or altered them: never through a symbolic
// link, only a regular file owned by the process's user (or root) that no
// one else may read or write, in a directory owned by that user (or root)
// that no one else may write.
package safefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrUnsafe is wrapped by every refusal of a file or its directory, each
// also wrapping the sentinel that says why.
var ErrUnsafe = errors.New("unsafe file")

// Why a file or its directory is refused.
var (
	ErrSymlink  = fmt.Errorf("%w: symbolic link", ErrUnsafe)
	ErrNotFile  = fmt.Errorf("%w: not a regular file or directory", ErrUnsafe)
	ErrOwner    = fmt.Errorf("%w: not owned by this process's user or root", ErrUnsafe)
	ErrFileMode = fmt.Errorf("%w: readable or writable by group or others", ErrUnsafe)
	ErrDirMode  = fmt.Errorf("%w: directory writable by group or others", ErrUnsafe)
)

// Open opens path with flag (os.O_RDONLY, os.O_RDWR, os.O_APPEND; with
// os.O_CREATE it creates a missing file with mode 0600, and created
// reports it) after checking its directory, never following a symbolic
// link at path, and checks the file it opened.
func Open(path string, flag int) (f *os.File, created bool, err error) {
	if err := checkDir(filepath.Dir(path)); err != nil {
		return nil, false, err
	}
	nofollow, link := noFollow(path)
	if link {
		return nil, false, symlinkError(path)
	}
	flag |= nofollow
	if flag&os.O_CREATE != 0 {
		f, err = os.OpenFile(path, flag|os.O_EXCL, 0o600)
		if err == nil {
			return f, true, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, false, openError(path, err)
		}
		flag &^= os.O_CREATE
	}
	if f, err = os.OpenFile(path, flag, 0); err != nil {
		return nil, false, openError(path, err)
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkFile(path, fi)
	}
	if err != nil {
		f.Close()
		return nil, false, err
	}
	return f, false, nil
}

// openError names a symbolic link at path.
func openError(path string, err error) error {
	if isLoop(err) {
		return symlinkError(path)
	}
	return err
}

func symlinkError(path string) error {
	return fmt.Errorf("%w: %s (give the real file's path)", ErrSymlink, path)
}

// checkDir checks that dir is a directory owned by this process's user or
// root that group and others may not write.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s", ErrNotFile, dir)
	}
	if err := checkOwner(dir, fi); err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("%w: %s has mode %#o; keep the file in a directory only its owner may write (chmod go-w)", ErrDirMode, dir, perm)
	}
	return nil
}

func checkFile(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s", ErrNotFile, path)
	}
	if err := checkOwner(path, fi); err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %#o, want 0600 (chmod 600)", ErrFileMode, path, perm)
	}
	return nil
}

// SyncDir syncs the directory dir, so that a file created or renamed in it
// survives a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
