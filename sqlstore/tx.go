package sqlstore

import (
	"context"
	"database/sql/driver"
	"fmt"
)

// inTx runs fn in a write transaction. On SQLite it is BEGIN IMMEDIATE on
// a dedicated connection: database/sql cannot ask for it portably, and a
// deferred transaction that reads and then writes can fail with
// SQLITE_BUSY when another process writes in between.
func (s *Store) inTx(ctx context.Context, fn func(execer) error) error {
	if s.dialect != SQLite {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("sqlstore: begin: %w", err)
		}
		defer tx.Rollback()
		if err := fn(s.rebind(tx)); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("sqlstore: commit: %w", err)
		}
		return nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: begin: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("sqlstore: begin: %w", err)
	}
	// A background context: the rollback must happen even if ctx is what
	// failed, or the connection goes back to the pool mid-transaction.
	rollback := func() {
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); err != nil {
			conn.Raw(func(any) error { return errBadConn }) // discard it instead
		}
	}
	if err := fn(conn); err != nil {
		rollback()
		return err
	}
	if _, err := conn.ExecContext(context.WithoutCancel(ctx), "COMMIT"); err != nil {
		rollback()
		return fmt.Errorf("sqlstore: commit: %w", err)
	}
	return nil
}

// errBadConn makes database/sql discard a connection handed out by Raw.
var errBadConn = driver.ErrBadConn
