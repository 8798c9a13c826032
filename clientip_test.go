package apikey

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	tests := []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string // "" for the zero Addr
	}{
		{"RemoteAddr", "198.51.100.7:1234", nil, nil, "198.51.100.7"},
		{"RemoteAddr IPv6", "[2001:db8::1]:443", nil, nil, "2001:db8::1"},
		{"RemoteAddr IPv6 with zone", "[fe80::1%eth0]:443", nil, nil, "fe80::1"},
		{"RemoteAddr IPv4-mapped", "[::ffff:198.51.100.7]:1", nil, nil, "198.51.100.7"},
		{"RemoteAddr without port", "198.51.100.7", nil, nil, "198.51.100.7"},
		{"RemoteAddr garbage", "@", nil, nil, ""},
		{"RemoteAddr empty", "", nil, nil, ""},
		{"XFF ignored without trusted proxies", "198.51.100.7:1", []string{"203.0.113.1"}, nil, "198.51.100.7"},
		{"XFF ignored from untrusted peer", "198.51.100.7:1", []string{"203.0.113.1"}, trusted, "198.51.100.7"},
		{"one trusted hop", "10.0.0.1:1", []string{"203.0.113.1"}, trusted, "203.0.113.1"},
		{"right to left over trusted hops", "10.0.0.1:1", []string{"203.0.113.1, 10.1.1.1, 10.2.2.2"}, trusted, "203.0.113.1"},
		{"stops at first untrusted hop", "10.0.0.1:1", []string{"6.6.6.6, 203.0.113.1, 10.1.1.1"}, trusted, "203.0.113.1"},
		{"spoofed entries left of the client", "10.0.0.1:1", []string{"10.9.9.9, 203.0.113.1"}, trusted, "203.0.113.1"},
		{"several headers, last is nearest", "10.0.0.1:1", []string{"6.6.6.6", "203.0.113.1, 10.3.3.3"}, trusted, "203.0.113.1"},
		{"several headers, walk continues", "10.0.0.1:1", []string{"203.0.113.1", "10.3.3.3"}, trusted, "203.0.113.1"},
		{"all hops trusted", "10.0.0.1:1", []string{"10.5.5.5, 10.6.6.6"}, trusted, "10.5.5.5"},
		{"no XFF from proxy", "10.0.0.1:1", nil, trusted, "10.0.0.1"},
		{"malformed nearest entry", "10.0.0.1:1", []string{"203.0.113.1, bogus"}, trusted, "10.0.0.1"},
		{"malformed entry after trusted hops", "10.0.0.1:1", []string{"bogus, 10.7.7.7"}, trusted, "10.7.7.7"},
		{"empty entries skipped", "10.0.0.1:1", []string{"203.0.113.1,, ,"}, trusted, "203.0.113.1"},
		{"entry with port", "10.0.0.1:1", []string{"203.0.113.1:8080"}, trusted, "203.0.113.1"},
		{"bracketed IPv6 entry", "10.0.0.1:1", []string{"[2001:db8::5]"}, trusted, "2001:db8::5"},
		{"IPv6 entry with port", "10.0.0.1:1", []string{"[2001:db8::5]:99"}, trusted, "2001:db8::5"},
		{"trusted IPv6 proxy", "[2001:db8:ffff::1]:1", []string{"2001:db8::5, 2001:db8:ffff::2"}, trusted, "2001:db8::5"},
		{"tabs and spaces", "10.0.0.1:1", []string{" \t203.0.113.1\t "}, trusted, "203.0.113.1"},
		{"obfuscated IPv4 rejected", "10.0.0.1:1", []string{"0x7f.1"}, trusted, "10.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tt.remote, Header: http.Header{}}
			if tt.xff != nil {
				r.Header["X-Forwarded-For"] = tt.xff
			}
			got := clientIP(r, tt.trusted, false)
			assert.Equal(t, got, ClientIP(r, tt.trusted...), "the exported ClientIP disagrees")
			if tt.want == "" {
				assert.False(t, got.IsValid(), got.String())
				return
			}
			assert.Equal(t, netip.MustParseAddr(tt.want), got)
		})
	}
}

func TestClientIPUnixSocket(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	unixCtx := context.WithValue(context.Background(), http.LocalAddrContextKey, &net.UnixAddr{Name: "/run/api.sock", Net: "unix"})
	tcpCtx := context.WithValue(context.Background(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80})
	tests := []struct {
		name    string
		ctx     context.Context
		remote  string
		xff     []string
		trusted []netip.Prefix
		unix    bool // WithTrustedUnixSocket
		want    string
	}{
		{"unix peer, not trusted", unixCtx, "@", []string{"203.0.113.1"}, nil, false, ""},
		{"unix peer, trusted", unixCtx, "@", []string{"203.0.113.1"}, nil, true, "203.0.113.1"},
		{"unix peer with empty RemoteAddr", unixCtx, "", []string{"203.0.113.1"}, nil, true, "203.0.113.1"},
		{"unix peer, no XFF", unixCtx, "@", nil, nil, true, ""},
		{"unix peer, malformed XFF", unixCtx, "@", []string{"bogus"}, nil, true, ""},
		{"unix peer, then trusted hops", unixCtx, "@", []string{"203.0.113.1, 10.1.1.1"}, trusted, true, "203.0.113.1"},
		{"unix peer, spoof left of client", unixCtx, "@", []string{"6.6.6.6, 203.0.113.1"}, nil, true, "203.0.113.1"},
		{"TCP peer without address is not a Unix socket", tcpCtx, "", []string{"203.0.113.1"}, nil, true, ""},
		{"no local address in the context", context.Background(), "@", []string{"203.0.113.1"}, nil, true, ""},
		{"TCP peer keeps its own address", tcpCtx, "198.51.100.7:1", []string{"203.0.113.1"}, nil, true, "198.51.100.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := (&http.Request{RemoteAddr: tt.remote, Header: http.Header{}}).WithContext(tt.ctx)
			if tt.xff != nil {
				r.Header["X-Forwarded-For"] = tt.xff
			}
			got := clientIP(r, tt.trusted, tt.unix)
			if tt.want == "" {
				assert.False(t, got.IsValid(), got.String())
				return
			}
			assert.Equal(t, netip.MustParseAddr(tt.want), got)
		})
	}
}

func TestLimiterAddr(t *testing.T) {
	assert.Equal(t, "192.0.2.1", limiterAddr(netip.MustParseAddr("192.0.2.1")).String())
	assert.Equal(t, "2001:db8:1:2::", limiterAddr(netip.MustParseAddr("2001:db8:1:2:3:4:5:6")).String())
}

func TestClientIPAllocs(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	r := &http.Request{RemoteAddr: "10.0.0.1:1", Header: http.Header{"X-Forwarded-For": {"6.6.6.6, 203.0.113.1, 10.1.1.1"}}}
	assert.Zero(t, testing.AllocsPerRun(100, func() { clientIP(r, trusted, false) }))
}

func TestBlockListIsBounded(t *testing.T) {
	b := newBlockList(4)
	now := time.Unix(1_800_000_000, 0)
	for i := 0; i < 10; i++ {
		b.add(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), now.Add(1e9))
	}
	assert.LessOrEqual(t, len(b.until), 4)
	assert.Positive(t, b.wait(netip.AddrFrom4([4]byte{192, 0, 2, 9}), now))
	n := len(b.until)
	assert.Zero(t, b.wait(netip.AddrFrom4([4]byte{192, 0, 2, 9}), now.Add(2e9)))
	assert.Equal(t, n-1, len(b.until), "an expired block is forgotten")
	assert.Equal(t, int64(n-1), b.size.Load())
}

// TestBlockListEvictsOldest checks that a full list forgets its oldest
// block to make room, in constant time: an attacker who keeps adding
// addresses only ever pushes out its own earliest ones, and a re-blocked
// or expired address is not counted twice.
func TestBlockListEvictsOldest(t *testing.T) {
	const max = 1024
	b := newBlockList(max)
	now := time.Unix(1_800_000_000, 0)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	for i := range max {
		b.add(addr(i), now.Add(time.Hour))
	}
	for i := max; i < max+100; i++ {
		b.add(addr(i), now.Add(time.Hour))
		assert.Zero(t, b.wait(addr(i-max), now), "block %d is the oldest and must go first", i-max)
		assert.Positive(t, b.wait(addr(i-max+1), now), "block %d is not the oldest", i-max+1)
		assert.Positive(t, b.wait(addr(i), now))
		assert.Equal(t, int64(max), b.size.Load())
	}
	// Blocking an address again updates its entry and evicts nothing.
	b.add(addr(500), now.Add(2*time.Hour))
	assert.Equal(t, int64(max), b.size.Load())
	assert.Positive(t, b.wait(addr(100), now), "the oldest stays")
	assert.Equal(t, time.Hour+time.Minute, b.wait(addr(500), now.Add(59*time.Minute)))
	// An expired block is forgotten when read, leaving its slot stale until
	// the ring comes round to it; blocked again, the address takes the
	// newest slot, which pushes out the oldest block. The list never grows
	// past max.
	later := now.Add(90 * time.Minute)
	assert.Zero(t, b.wait(addr(102), later))
	assert.Equal(t, int64(max-1), b.size.Load())
	b.add(addr(102), later.Add(time.Hour))
	assert.Equal(t, int64(max-1), b.size.Load())
	assert.Zero(t, b.wait(addr(100), now), "the oldest went")
	assert.Positive(t, b.wait(addr(102), later))
	for i := range 2 * max {
		b.add(addr(10000+i), later.Add(time.Hour))
		assert.LessOrEqual(t, b.size.Load(), int64(max))
	}
	for i := max; i < 2*max; i++ {
		assert.Positive(t, b.wait(addr(10000+i), later))
	}
	assert.Equal(t, int64(max), b.size.Load())
}

func TestParseIPv4Port(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string // "" when the fast path declines
	}{
		{"198.51.100.7:40000", "198.51.100.7"},
		{"0.0.0.0:0", "0.0.0.0"},
		{"255.255.255.255:65535", "255.255.255.255"},
		{"10.0.0.1:00080", "10.0.0.1"},
		{"256.1.1.1:1", ""},
		{"01.1.1.1:1", ""},
		{"1.00.1.1:1", ""},
		{"1.1.1.1:", ""},
		{"1.1.1.1:65536", ""},
		{"1.1.1.1:000080", ""}, // ParseAddrPort takes it; the full parse does
		{"1.1.1.1:+80", ""},
		{"1.1.1.1", ""},
		{"1.1.1:1", ""},
		{"1.1.1.1.1:1", ""},
		{"[::1]:1", ""},
		{"", ""},
	} {
		a, ok := parseIPv4Port(tt.in)
		if tt.want == "" {
			assert.False(t, ok, "%q: got %v", tt.in, a)
			continue
		}
		if assert.True(t, ok, tt.in) {
			assert.Equal(t, netip.MustParseAddr(tt.want), a, tt.in)
		}
	}
	// Declined input still parses in full.
	assert.Equal(t, netip.MustParseAddr("1.1.1.1"), parseHostAddr("1.1.1.1:000080"))
}

// FuzzParseHostAddr: the one-pass IPv4 parser accepts only what
// netip.ParseAddrPort accepts, with the same address, and parseHostAddr
// never panics.
func FuzzParseHostAddr(f *testing.F) {
	for _, s := range []string{"198.51.100.7:40000", "1.2.3.4", "[2001:db8::1]:443", "[fe80::1%eth0]", "::ffff:1.2.3.4", "01.2.3.4:5", "1.2.3.4:65536", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parseHostAddr(s)
		a, ok := parseIPv4Port(s)
		if !ok {
			return
		}
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			t.Fatalf("parseIPv4Port(%q) = %v, but netip.ParseAddrPort refuses it: %v", s, a, err)
		}
		if want := normalAddr(ap.Addr()); a != want {
			t.Fatalf("parseIPv4Port(%q) = %v, netip.ParseAddrPort %v", s, a, want)
		}
	})
}

// BenchmarkParseHostAddr: the one-pass parser against netip's, on a
// RemoteAddr, in one run.
func BenchmarkParseHostAddr(b *testing.B) {
	const s = "198.51.100.7:40000"
	b.Run("netip", func(b *testing.B) {
		for b.Loop() {
			ap, _ := netip.ParseAddrPort(s)
			_ = normalAddr(ap.Addr())
		}
	})
	b.Run("parseHostAddr", func(b *testing.B) {
		for b.Loop() {
			parseHostAddr(s)
		}
	})
}
