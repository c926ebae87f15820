package jose

import "encoding/base64"

// b64Table maps a byte to its 6-bit value in the base64url alphabet
// (RFC 4648 §5), or 0xff for a byte outside it (any value with one of the
// two top bits set is invalid).
var b64Table = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// DecodedLen is the length of the bytes that an unpadded base64url text of
// n characters holds, or -1 if no such text has n characters.
func DecodedLen(n int) int {
	switch n % 4 {
	case 1:
		return -1
	case 2:
		return n/4*3 + 1
	case 3:
		return n/4*3 + 2
	}
	return n / 4 * 3
}

// AppendDecode appends the bytes that src encodes to dst. It accepts only
// canonical unpadded base64url: no '=', no whitespace or line breaks, no
// character outside the alphabet, and no non-zero bits in the last
// character beyond the data (so each byte string has exactly one
// encoding). Any violation gives ErrBase64.
func AppendDecode(dst, src []byte) ([]byte, error) {
	n := DecodedLen(len(src))
	if n < 0 {
		return dst, ErrBase64
	}
	out := len(dst)
	if cap(dst)-out < n {
		grown := make([]byte, out, out+n)
		copy(grown, dst)
		dst = grown
	}
	dst = dst[:out+n]
	o := dst[out:]
	i := 0
	for ; i+4 <= len(src); i += 4 {
		a, b, c, d := b64Table[src[i]], b64Table[src[i+1]], b64Table[src[i+2]], b64Table[src[i+3]]
		if (a|b|c|d)&0xc0 != 0 {
			return dst[:out], ErrBase64
		}
		v := uint32(a)<<18 | uint32(b)<<12 | uint32(c)<<6 | uint32(d)
		o[0], o[1], o[2] = byte(v>>16), byte(v>>8), byte(v)
		o = o[3:]
	}
	switch len(src) - i {
	case 2:
		a, b := b64Table[src[i]], b64Table[src[i+1]]
		if (a|b)&0xc0 != 0 || b&0x0f != 0 {
			return dst[:out], ErrBase64
		}
		o[0] = a<<2 | b>>4
	case 3:
		a, b, c := b64Table[src[i]], b64Table[src[i+1]], b64Table[src[i+2]]
		if (a|b|c)&0xc0 != 0 || c&0x03 != 0 {
			return dst[:out], ErrBase64
		}
		o[0] = a<<2 | b>>4
		o[1] = b<<4 | c>>2
	}
	return dst, nil
}

// AppendEncode appends the unpadded base64url encoding of src to dst.
func AppendEncode(dst, src []byte) []byte {
	return base64.RawURLEncoding.AppendEncode(dst, src)
}
