package jwks

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// checkURL accepts https, and http to a loopback host when insecureLoopback.
func checkURL(raw string, insecureLoopback bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: cannot parse the URL", ErrInsecureURL)
	}
	if u.User != nil {
		return fmt.Errorf("%w: credentials in the URL", ErrInsecureURL)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		ip := net.ParseIP(h)
		if insecureLoopback && (h == "localhost" || ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback)) {
			return nil
		}
		return fmt.Errorf("%w: plain http to %q", ErrInsecureURL, h)
	}
	return fmt.Errorf("%w: scheme %q", ErrInsecureURL, u.Scheme)
}

// safeClient returns a copy of base (a fresh client when nil) with the
// given timeout (0: none, the caller's context bounds each request) that
// follows at most two redirects, each to a URL checkURL accepts.
func safeClient(base *http.Client, timeout time.Duration, insecureLoopback bool) *http.Client {
	c := &http.Client{}
	if base != nil {
		*c = *base
	}
	c.Timeout = timeout
	next := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 3 {
			return fmt.Errorf("%w: too many redirects", ErrFetch)
		}
		if err := checkURL(req.URL.String(), insecureLoopback); err != nil {
			return err
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
	return c
}
