// Package pglisten connects sqlstore's change notifications on PostgreSQL
// to github.com/jackc/pgx/v5, so that package sqlstore itself needs no
// driver:
//
//	db, err := sql.Open("pgx", dsn)
//	st, err := sqlstore.New(db, sqlstore.Postgres, sqlstore.WithNotifications(pglisten.Wait))
//
// Package sqlopen does this for you.
package pglisten

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/apikeykit/apikey/sqlstore"
)

// Wait implements sqlstore.NotifyWaiter for connections opened through
// github.com/jackc/pgx/v5/stdlib (sql.Open("pgx", …) or
// stdlib.OpenDBFromPool). It blocks until a notification arrives and
// returns its payload, or returns an error when ctx is done or the
// connection is lost. It is safe for concurrent use on distinct
// connections.
func Wait(ctx context.Context, driverConn any) (string, error) {
	c, ok := driverConn.(interface{ Conn() *pgx.Conn })
	if !ok {
		return "", fmt.Errorf("%w: pglisten: driver connection is a %T, not a github.com/jackc/pgx/v5/stdlib connection", sqlstore.ErrNoNotifications, driverConn)
	}
	n, err := c.Conn().WaitForNotification(ctx)
	if err != nil {
		return "", err
	}
	return n.Payload, nil
}
