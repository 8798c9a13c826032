package apikey_test

import (
	"net/netip"
	"testing"

	"github.com/apikeykit/apikey"
	"github.com/stretchr/testify/assert"
)

func TestKeyAllowsIP(t *testing.T) {
	k := &apikey.Key{AllowedIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("fe80::/10")}}
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"192.0.2.7", true},
		{"::ffff:192.0.2.7", true}, // IPv4-mapped: compared as IPv4
		{"fe80::1", true},
		{"fe80::1%eth0", true}, // the zone is not part of the address
		{"198.51.100.1", false},
		{"2001:db8::1", false},
	} {
		assert.Equal(t, tc.want, k.AllowsIP(netip.MustParseAddr(tc.addr)), tc.addr)
	}
	assert.True(t, (&apikey.Key{}).AllowsIP(netip.MustParseAddr("203.0.113.9")), "no allowlist allows every address")
}
