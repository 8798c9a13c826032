package vault

import (
	"context"
	"time"
)

// Op names what an AuditEvent reports.
type Op string

// The operations reported to WithAudit's function.
const (
	OpPut    Op = "put"
	OpReveal Op = "reveal"
	OpDelete Op = "delete"
)

// AuditEvent reports one Put, Reveal or Delete, successful or not. It
// never holds a secret: Err's text names owners and names only.
type AuditEvent struct {
	Time    time.Time
	Op      Op
	Owner   string
	Name    string
	Version int64  // the secret's version, 0 if unknown (not found)
	Actor   string // from WithActor; "" if the context carries none
	Err     error  // nil on success
}

type actorKey struct{}

// WithActor returns a context that names who acts, for example an
// operator's user ID or "billing-worker"; Put, Reveal and Delete report
// it in their AuditEvent.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the actor WithActor put in ctx, or "".
func ActorFrom(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}
