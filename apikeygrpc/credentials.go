package apikeygrpc

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"github.com/apikeykit/apikey"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// Credentials returns per-RPC credentials that send secret as
// "authorization: Bearer <key>" on every call, for grpc.WithPerRPCCredentials
// or the grpc.PerRPCCredentials call option.
//
// They require transport security: grpc.NewClient refuses them on a
// connection with insecure credentials, and each call checks that its
// connection has privacy and integrity (TLS, ALTS) before the key is
// sent, failing with Unauthenticated otherwise. WithInsecureLoopback also
// allows connections whose peer is on this machine. The key is revealed
// only to build the metadata of a call, and never appears in an error.
// They are safe for concurrent use.
func Credentials(secret apikey.Secret, opts ...CredentialsOption) credentials.PerRPCCredentials {
	c := &keyCredentials{secret: secret}
	for _, opt := range opts {
		if opt != nil {
			opt(c)
		}
	}
	return c
}

// A CredentialsOption configures Credentials.
type CredentialsOption func(*keyCredentials)

// WithInsecureLoopback lets the credentials go over a connection without
// transport security when its peer is a loopback address (127.0.0.0/8,
// ::1) or a Unix socket, for development and for sidecars on the same
// host. The peer is checked on every call, against the address the
// connection actually reached, not the dial target's name: a call over a
// connection elsewhere fails with Unauthenticated and sends nothing.
// With it, RequireTransportSecurity reports false, so that
// grpc.NewClient accepts insecure.NewCredentials.
func WithInsecureLoopback() CredentialsOption {
	return func(c *keyCredentials) { c.loopback = true }
}

// keyCredentials implements credentials.PerRPCCredentials. It holds the
// key only as an apikey.Secret, which redacts itself.
type keyCredentials struct {
	secret   apikey.Secret
	loopback bool
}

var (
	errNoKey      = errors.New("apikeygrpc: no API key to send")
	errNoRequest  = errors.New("apikeygrpc: no request information; the API key is not sent")
	errNotSecured = errors.New("apikeygrpc: the connection has no transport security; the API key is not sent (see WithInsecureLoopback for loopback peers)")
)

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (c *keyCredentials) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	if c.secret.IsZero() {
		return nil, errNoKey
	}
	ri, ok := credentials.RequestInfoFromContext(ctx)
	if !ok {
		return nil, errNoRequest
	}
	if err := credentials.CheckSecurityLevel(ri.AuthInfo, credentials.PrivacyAndIntegrity); err != nil {
		if !c.loopback || !loopbackPeer(ctx) {
			return nil, errNotSecured
		}
	}
	return map[string]string{"authorization": "Bearer " + c.secret.Reveal()}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials: true
// unless WithInsecureLoopback is given.
func (c *keyCredentials) RequireTransportSecurity() bool { return !c.loopback }

// String describes the credentials without the key.
func (c *keyCredentials) String() string { return "apikeygrpc.Credentials(" + c.secret.String() + ")" }

// loopbackPeer reports whether the call's connection reached this machine:
// a loopback IP address or a Unix socket.
func loopbackPeer(ctx context.Context) bool {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return false
	}
	switch a := p.Addr.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	ap, err := netip.ParseAddrPort(p.Addr.String())
	return err == nil && ap.Addr().Unmap().IsLoopback()
}
