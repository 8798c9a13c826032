package apikey

import "context"

// FromContext returns the key that authenticated the request whose context
// is ctx, as put there by Manager.Middleware or NewContext. The Key is
// shared and must not be modified.
func FromContext(ctx context.Context) (*Key, bool) {
	c, _ := ctx.Value(contextKey{}).(*keyContext)
	if c == nil || c.key == nil {
		return nil, false
	}
	return c.key, true
}

// NewContext returns a copy of ctx carrying k, as Manager.Middleware does:
// for tests of handlers that read FromContext, or for other transports
// (gRPC, queues) that verify keys themselves.
func NewContext(ctx context.Context, k *Key) context.Context {
	return &keyContext{Context: ctx, key: k}
}

// contextKey is the key of the *keyContext in a request's context.
type contextKey struct{}

// keyContext carries the verified key, and the middleware that verified
// it so that RequireScopes answers in the same format and reports to the
// same hook. It is one allocation where context.WithValue of a struct
// holding both would be two.
type keyContext struct {
	context.Context
	key *Key
	mw  *middleware // nil when made by NewContext
}

func (c *keyContext) Value(k any) any {
	if _, ok := k.(contextKey); ok {
		return c
	}
	return c.Context.Value(k)
}

func (c *keyContext) String() string { return "apikey.keyContext" }

// limitedContext is a keyContext with room for the response's
// RateLimit-Policy and RateLimit field values, so that a rate-limited
// request allocates them with its context. The request carries a pointer
// to the embedded keyContext, which keeps the whole struct alive; the
// header map refers to fields, which is never written again once set.
type limitedContext struct {
	keyContext
	fields [2]string
}
