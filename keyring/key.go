package keyring

import (
	"crypto"
	"fmt"
	"time"

	"github.com/tokenkms/tokenkms/verifier"
)

// State is where a key is in its life. Keys move one way:
//
//	Pending --activate--> Active --rotate--> Retiring --grace over--> Retired --> Destroyed
//	   \________________________\_____________\______compromise______> Compromised
type State int

// The states. The zero value is not a state.
const (
	Pending     State = iota + 1 // published in the JWKS, signs nothing (R3.4 step 1)
	Active                       // the one key of its set that signs (R3.4 step 2)
	Retiring                     // verifies only, until GraceUntil (R3.4 step 3)
	Retired                      // gone from the JWKS; its tokens are rejected (R3.4 step 4, T2)
	Compromised                  // gone from the JWKS; its tokens are revoked (R4, T4)
	Destroyed                    // backend material destroyed; metadata kept for audit
)

var stateNames = [...]string{"", "pending", "active", "retiring", "retired", "compromised", "destroyed"}

func (s State) String() string {
	if s < Pending || s > Destroyed {
		return fmt.Sprintf("State(%d)", int(s))
	}
	return stateNames[s]
}

// Published reports whether keys in this state may appear in the JWKS and
// verify tokens: Pending (once approved), Active and Retiring (within
// grace).
func (s State) Published() bool { return s == Pending || s == Active || s == Retiring }

// known reports whether s is one of the states.
func (s State) known() bool { return s >= Pending && s <= Destroyed }

// canMove lists the legal transitions.
func (s State) canMove(to State) bool {
	switch to {
	case Active:
		return s == Pending
	case Retiring:
		return s == Active
	case Retired:
		return s == Pending || s == Retiring
	case Compromised:
		return s == Pending || s == Active || s == Retiring || s == Retired
	case Destroyed:
		return s == Retired || s == Compromised
	}
	return false
}

// Purpose says what a key is for (R1).
type Purpose int

// The purposes.
const (
	Signing    Purpose = iota + 1 // JWT signing keys (R1.1)
	Encryption                    // data-encryption keys (R1.2)
	Secret                        // runtime secrets (R1.3)
)

var purposeNames = [...]string{"", "signing", "encryption", "secret"}

func (p Purpose) String() string {
	if p < Signing || p > Secret {
		return fmt.Sprintf("Purpose(%d)", int(p))
	}
	return purposeNames[p]
}

// Key is the record of one key version. It holds no private material:
// BackendRef names where the private part lives (for local keys, the key
// sealed under the key-encryption key).
type Key struct {
	KID       string
	Set       string
	Purpose   Purpose
	Algorithm string
	State     State

	Owner     string    // who answers for this key (R2.4)
	CreatedBy string    // the principal that generated it
	CreatedAt time.Time // R2.4
	RotateBy  time.Time // target rotation date (R2.4)

	ApprovedBy string // the principal that approved activation (of a break-glass key: reviewed it afterwards)
	ApprovedAt time.Time

	// Standby marks a set's approved, published successor kept for
	// emergency rotation (SetPolicy.NoStandby); cleared when it activates.
	Standby bool

	ActivateAt    time.Time // when a scheduled successor becomes Active (zero: by hand)
	ActivatedAt   time.Time
	RetiringAt    time.Time // when it stopped signing
	GraceUntil    time.Time // end of the verification grace window
	RetiredAt     time.Time
	CompromisedAt time.Time
	DestroyedAt   time.Time
	Incident      string // incident id of a compromise

	Backend string // provider name, e.g. "local", "awskms"
	// BackendRef is opaque to the keyring: the provider's reference. It is
	// Hidden, so no fmt verb, log or JSON shows it; stores read it with
	// Reveal and set it with Hide.
	BackendRef Hidden `json:"-"`

	Public crypto.PublicKey // signing keys: the public key

	Version int64 // optimistic concurrency: bumped by every Update
}

// String names the key without its reference.
func (k Key) String() string {
	return fmt.Sprintf("key(kid=%s set=%s alg=%s state=%s)", k.KID, k.Set, k.Algorithm, k.State)
}

// GoString keeps %#v short and free of the backend reference.
func (k Key) GoString() string { return k.String() }

// graceEnded reports whether k is Retiring and its grace window is over at
// now: from then on it neither verifies, nor is read. A rotated data key
// has no such end: it decrypts until it is retired by hand (Retire).
func (k *Key) graceEnded(now time.Time) bool {
	return k.State == Retiring && k.Purpose != Encryption && !now.Before(k.GraceUntil)
}

// approved reports whether k carries an approval by a second principal
// (for a break-glass key: its review).
func (k *Key) approved() bool { return k.ApprovedBy != "" }

// publishedAt is when k entered the JWKS: its approval (a Pending key is
// published once approved), or its creation where approval is skipped.
func (k *Key) publishedAt() time.Time {
	if k.approved() && k.ApprovedAt.After(k.CreatedAt) {
		return k.ApprovedAt
	}
	return k.CreatedAt
}

// reviewPending reports whether k is a break-glass key of an emergency
// rotation (activated at once, without prior approval) that no second
// principal has reviewed yet.
func (k *Key) reviewPending() bool {
	return k.Incident != "" && !k.approved() && (k.State == Active || k.State == Retiring || k.State == Retired)
}

// CheckRecord reports whether k's state and purpose are among the known
// ones; a store refuses to write, and reports as corrupt when it reads, a
// record that is not (ErrCorruptRecord).
func CheckRecord(k Key) error {
	if !k.State.known() || k.Purpose < Signing || k.Purpose > Secret {
		return fmt.Errorf("%w: %s has state %d, purpose %d", ErrCorruptRecord, k.KID, int(k.State), int(k.Purpose))
	}
	return nil
}

// verifierKey is k as a verifier sees it.
func (k *Key) verifierKey() verifier.Key {
	return verifier.Key{KID: k.KID, Set: k.Set, Algorithm: k.Algorithm, Public: k.Public}
}
