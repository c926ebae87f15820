package keyringtest

import "errors"

// ErrOptions: Options that contradict themselves.
var ErrOptions = errors.New("keyringtest: inconsistent options")
