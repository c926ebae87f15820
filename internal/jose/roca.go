package jose

import (
	"crypto/rsa"
	"fmt"
	"math/big"
)

// rocaPrimes are the small primes of the ROCA fingerprint (CVE-2017-15361,
// Nemec et al., CCS 2017): a modulus made by the flawed Infineon library
// is, modulo each of them, a power of 65537.
var rocaPrimes = []int64{3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167}

// rocaPowers[i] has bit r set when r is a power of 65537 modulo rocaPrimes[i].
var rocaPowers = func() [][3]uint64 {
	out := make([][3]uint64, len(rocaPrimes))
	for i, p := range rocaPrimes {
		g := 65537 % p
		for r := int64(1); ; r = r * g % p {
			if out[i][r/64]&(1<<(r%64)) != 0 {
				break
			}
			out[i][r/64] |= 1 << (r % 64)
		}
	}
	return out
}()

// CheckImportedRSA refuses an RSA public key that carries the ROCA
// fingerprint: its private key can be recovered from it. It is checked when
// a key enters the library from outside (a JWKS document), not on every
// verification.
func CheckImportedRSA(k *rsa.PublicKey) error {
	var m big.Int
	for i, p := range rocaPrimes {
		r := m.Mod(k.N, big.NewInt(p)).Int64()
		if rocaPowers[i][r/64]&(1<<(r%64)) == 0 {
			return nil
		}
	}
	return fmt.Errorf("%w: RSA modulus has the ROCA fingerprint (CVE-2017-15361)", ErrKeyMismatch)
}
