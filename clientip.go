package apikey

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientIP returns the address of the client that sent r. Without trusted
// proxies it is the host part of r.RemoteAddr, whatever headers say. With
// them, and only if the connection itself comes from a trusted proxy,
// X-Forwarded-For is read from the right (the hop the nearest proxy
// appended) to the left, and the first address that is not a trusted proxy
// is the client. Entries left of it were written by the client and are never
// read. A malformed entry stops the walk: the last trusted hop, the proxy
// that passed the bad entry on, is then the client, which is safe for the
// allowlist (no key allows a proxy by accident unless its owner says so).
//
// A peer on a Unix socket has no address. If unixTrusted, it is a trusted
// proxy like the others, and X-Forwarded-For names the client; otherwise,
// or if X-Forwarded-For names none, the client has no address either.
//
// It returns the zero Addr if no address is found (a Unix socket, a test
// that leaves RemoteAddr empty); callers fail closed on that.
func clientIP(r *http.Request, trusted []netip.Prefix, unixTrusted bool) netip.Addr {
	addr := parseHostAddr(r.RemoteAddr)
	switch {
	case addr.IsValid():
		if !containsAddr(trusted, addr) {
			return addr
		}
	case !unixTrusted || !onUnixSocket(r):
		return addr
	}
	values := r.Header["X-Forwarded-For"]
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for v != "" {
			hop := v
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				hop, v = v[j+1:], v[:j]
			} else {
				v = ""
			}
			hop = strings.Trim(hop, " \t")
			if hop == "" {
				continue // "a,,b" and a trailing comma carry no hop
			}
			a := parseHostAddr(hop)
			if !a.IsValid() {
				return addr
			}
			addr = a
			if !containsAddr(trusted, a) {
				return a
			}
		}
	}
	return addr // every hop was a trusted proxy: the furthest one is the client
}

// ClientIP returns the address of the client that sent r, found as the
// middleware finds it with WithTrustedProxies(trusted...): the host of
// r.RemoteAddr, unless that is a trusted proxy, and then X-Forwarded-For
// read from the right up to the first address that is not a trusted proxy.
// With no trusted proxies, headers are never read. It returns the zero
// Addr when r has no address (a Unix socket, an empty RemoteAddr). It is
// for other handlers of the same service, such as package portal's audit
// events, so that they name the client as the middleware does.
func ClientIP(r *http.Request, trusted ...netip.Prefix) netip.Addr {
	return clientIP(r, trusted, false)
}

// parseHostAddr parses "ip", "ip:port", "[ipv6]" or "[ipv6]:port",
// dropping any IPv6 zone and unmapping IPv4-mapped IPv6, so the same client
// always gives the same Addr. It picks the parser by shape, because a
// failed parse allocates its error: valid input does not allocate.
func parseHostAddr(s string) netip.Addr {
	if a, ok := parseIPv4Port(s); ok {
		return a
	}
	switch {
	case strings.HasPrefix(s, "["):
		if strings.HasSuffix(s, "]") {
			s = s[1 : len(s)-1]
			break
		}
		if ap, err := netip.ParseAddrPort(s); err == nil {
			return normalAddr(ap.Addr())
		}
		return netip.Addr{}
	case strings.Count(s, ":") == 1: // IPv4 with a port
		if ap, err := netip.ParseAddrPort(s); err == nil {
			return normalAddr(ap.Addr())
		}
		return netip.Addr{}
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return normalAddr(a)
	}
	return netip.Addr{}
}

// parseIPv4Port parses the commonest RemoteAddr, "a.b.c.d:port", in one
// pass. It accepts only what netip.ParseAddrPort accepts of that shape
// (four decimal octets of at most 255 without leading zeros, and a port of
// 1 to 5 digits up to 65535) and returns the same address; for anything
// else it reports false, and parseHostAddr parses s in full.
func parseIPv4Port(s string) (netip.Addr, bool) {
	var ip [4]byte
	i := 0
	for n := range ip {
		v, digits := 0, 0
		for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
			if digits > 0 && v == 0 {
				return netip.Addr{}, false // a leading zero
			}
			v = v*10 + int(s[i]-'0')
			digits++
			if v > 255 {
				return netip.Addr{}, false
			}
		}
		sep := byte('.')
		if n == len(ip)-1 {
			sep = ':'
		}
		if digits == 0 || i == len(s) || s[i] != sep {
			return netip.Addr{}, false
		}
		ip[n] = byte(v)
		i++
	}
	port := s[i:]
	if len(port) == 0 || len(port) > 5 {
		return netip.Addr{}, false
	}
	p := 0
	for j := range len(port) {
		if port[j] < '0' || port[j] > '9' {
			return netip.Addr{}, false
		}
		p = p*10 + int(port[j]-'0')
	}
	if p > 65535 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(ip), true
}

// onUnixSocket reports whether net/http received r on a Unix socket.
func onUnixSocket(r *http.Request) bool {
	_, ok := r.Context().Value(http.LocalAddrContextKey).(*net.UnixAddr)
	return ok
}

func normalAddr(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

func containsAddr(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// limiterAddr is the address failed authentications are counted under: the
// IPv4 address itself, or the /64 an IPv6 address belongs to, since one
// subscriber usually holds a whole /64 and could otherwise rotate through
// 2^64 addresses.
func limiterAddr(a netip.Addr) netip.Addr {
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}
