package portal

import (
	"context"
	"log/slog"
	"net/netip"
	"time"
)

// Actions of an AuditEvent.
const (
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionRotate = "rotate"
	ActionRevoke = "revoke"
)

// AuditEvent reports one change a customer made through the portal, once
// it is stored. It never holds a secret: keys are named by their ID.
type AuditEvent struct {
	Time     time.Time  // when the change was stored, by the portal's clock
	Owner    string     // whose key it is
	Actor    string     // who made it, from WithActor; "" without it
	Action   string     // one of the Action constants
	KeyID    string     // the key changed; for a rotation, the old key
	NewKeyID string     // for a rotation, the replacement; "" otherwise
	ClientIP netip.Addr // the client, as WithTrustedProxies finds it; the zero Addr if unknown
}

// LogValue logs e as a group of its fields.
func (e AuditEvent) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("action", e.Action),
		slog.String("owner", e.Owner),
		slog.String("kid", e.KeyID),
	}
	if e.NewKeyID != "" {
		attrs = append(attrs, slog.String("new_kid", e.NewKeyID))
	}
	if e.Actor != "" {
		attrs = append(attrs, slog.String("actor", e.Actor))
	}
	attrs = append(attrs, slog.String("client", e.ClientIP.String()), slog.Time("time", e.Time))
	return slog.GroupValue(attrs...)
}

// logAudit is the default audit hook.
func logAudit(e AuditEvent) {
	slog.Default().LogAttrs(context.Background(), slog.LevelInfo, "portal: key changed", slog.Any("audit", e))
}
