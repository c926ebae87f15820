package filestore

import "errors"

// Errors of the file store; match with errors.Is.
var (
	// ErrPermissions: a store or lock file that is a symbolic link, is not
	// owned by this process's user (or root), or that group or others may
	// read or write (want 0600), or a directory they may write.
	ErrPermissions   = errors.New("filestore: unsafe store file or directory")
	ErrFormatVersion = errors.New("filestore: unsupported file format version")
	ErrCorrupt       = errors.New("filestore: store file corrupt")
	ErrLocked        = errors.New("filestore: store in use by another process")
	ErrClosed        = errors.New("filestore: store closed")
	ErrInvalidKey    = errors.New("filestore: invalid key record")
	ErrConfig        = errors.New("filestore: invalid configuration")
)
