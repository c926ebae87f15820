package filestore

import "errors"

// Errors of the file store; match with errors.Is.
var (
	ErrPermissions   = errors.New("filestore: file permissions too loose (want 0600)")
	ErrFormatVersion = errors.New("filestore: unsupported file format version")
	ErrCorrupt       = errors.New("filestore: store file corrupt")
	ErrLocked        = errors.New("filestore: store in use by another process")
	ErrClosed        = errors.New("filestore: store closed")
	ErrInvalidKey    = errors.New("filestore: invalid key record")
	ErrConfig        = errors.New("filestore: invalid configuration")
)
