package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/vault"
)

// VaultStore is a vault.Store in the Store's database, in the table
// prefix+"vault_secrets" (schema version 3). It holds what package vault
// gives it: ciphertexts, nonces and wrapped data keys, never a secret or
// a data key. It is safe for concurrent use, and processes sharing the
// database share the secrets. Database failures wrap
// apikey.ErrUnavailable.
type VaultStore struct {
	s *Store
	q vaultQueries
}

type vaultQueries struct {
	get, insert, update, list, del, revealed, rewrap, stale string
}

// vaultColumns lists the table's columns in the order scanVault reads
// them.
const vaultColumns = `owner, name, version, kek_version, wrapped_key, nonce, ciphertext, hint, created_at, revealed_at`

// Vault returns a vault.Store that uses the Store's database and table
// prefix. It needs a migrated schema, like the Store.
func (s *Store) Vault() *VaultStore {
	t := s.cfg.prefix + "vault_secrets"
	q := vaultQueries{
		get: `SELECT ` + vaultColumns + ` FROM ` + t + ` WHERE owner = $1 AND name = $2`,
		// ON CONFLICT DO NOTHING and a conditional UPDATE, so that
		// RowsAffected tells a lost race portably.
		insert: `INSERT INTO ` + t + ` (` + vaultColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (owner, name) DO NOTHING`,
		update: `UPDATE ` + t + ` SET version = $3, kek_version = $4, wrapped_key = $5, nonce = $6,
			ciphertext = $7, hint = $8, created_at = $9, revealed_at = $10
			WHERE owner = $1 AND name = $2 AND version = $11`,
		list: `SELECT ` + vaultColumns + ` FROM ` + t + ` WHERE owner = $1 ORDER BY name`,
		del:  `DELETE FROM ` + t + ` WHERE owner = $1 AND name = $2`,
		revealed: `UPDATE ` + t + ` SET revealed_at = $4
			WHERE owner = $1 AND name = $2 AND version = $3 AND (revealed_at IS NULL OR revealed_at < $4)`,
		rewrap: `UPDATE ` + t + ` SET kek_version = $5, wrapped_key = $6
			WHERE owner = $1 AND name = $2 AND version = $3 AND kek_version = $4`,
		stale: `SELECT ` + vaultColumns + ` FROM ` + t + `
			WHERE kek_version <> $1 AND (owner > $2 OR owner = $2 AND name > $3)
			ORDER BY owner, name LIMIT $4`,
	}
	switch s.dialect {
	case SQLite:
		for _, p := range []*string{&q.get, &q.insert, &q.update, &q.list, &q.del, &q.revealed, &q.rewrap, &q.stale} {
			*p = sqlitePlaceholders(*p)
		}
	case MySQL:
		// Affects 0 rows if the row exists (the Store refuses
		// clientFoundRows).
		q.insert = `INSERT INTO ` + t + ` (` + vaultColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON DUPLICATE KEY UPDATE owner = owner`
	}
	return &VaultStore{s: s, q: q}
}

func vaultErr(op string, err error) error {
	return fmt.Errorf("%w: sqlstore: vault: %s: %w", apikey.ErrUnavailable, op, err)
}

// Get implements vault.Store.
func (v *VaultStore) Get(ctx context.Context, owner, name string) (vault.Record, error) {
	if err := v.s.check(ctx); err != nil {
		return vault.Record{}, err
	}
	if !validText(owner) || !validText(name) {
		return vault.Record{}, vault.ErrNotFound
	}
	r, err := scanVault(v.s.db.QueryRowContext(ctx, v.q.get, owner, name))
	if errors.Is(err, sql.ErrNoRows) {
		return vault.Record{}, vault.ErrNotFound
	}
	if err != nil {
		return vault.Record{}, vaultErr("get", err)
	}
	return r, nil
}

// Put implements vault.Store.
func (v *VaultStore) Put(ctx context.Context, r vault.Record) error {
	if err := v.s.check(ctx); err != nil {
		return err
	}
	if !validText(r.Owner) || !validText(r.Name) || !validText(r.KEKVersion) || !validText(r.Hint) {
		return fmt.Errorf("%w: sqlstore: vault: owner, name, KEK version and hint must be UTF-8 without NUL bytes", apikey.ErrInvalidRequest)
	}
	if r.Version < 1 {
		return vault.ErrConflict
	}
	if v.s.dialect == MySQL && max(len(r.Owner), len(r.Name), len(r.KEKVersion), len(r.Hint), len(r.Nonce)) > mysqlMaxBytes {
		return fmt.Errorf("%w: sqlstore: vault: owner, name, KEK version, hint and nonce must be at most %d bytes on MySQL", apikey.ErrInvalidRequest, mysqlMaxBytes)
	}
	args := []any{r.Owner, r.Name, r.Version, r.KEKVersion, nonNil(r.WrappedKey), nonNil(r.Nonce), nonNil(r.Ciphertext),
		r.Hint, v.s.timeArg(r.CreatedAt), v.s.timeArg(r.RevealedAt)}
	query := v.q.insert
	if r.Version > 1 {
		query = v.q.update
		args = append(args, r.Version-1)
	}
	res, err := v.s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return vaultErr("put", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return vaultErr("put", err)
	}
	if n == 0 {
		return vault.ErrConflict
	}
	return nil
}

// nonNil stores an empty byte slice as empty, not NULL, in the NOT NULL
// columns.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// List implements vault.Store.
func (v *VaultStore) List(ctx context.Context, owner string) ([]vault.Record, error) {
	if err := v.s.check(ctx); err != nil {
		return nil, err
	}
	if !validText(owner) {
		return nil, nil
	}
	return v.query(ctx, "list", v.q.list, owner)
}

func (v *VaultStore) query(ctx context.Context, op, query string, args ...any) ([]vault.Record, error) {
	rows, err := v.s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, vaultErr(op, err)
	}
	defer rows.Close()
	var rs []vault.Record
	for rows.Next() {
		r, err := scanVault(rows)
		if err != nil {
			return nil, vaultErr(op, err)
		}
		rs = append(rs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, vaultErr(op, err)
	}
	return rs, nil
}

// Delete implements vault.Store.
func (v *VaultStore) Delete(ctx context.Context, owner, name string) error {
	if err := v.s.check(ctx); err != nil {
		return err
	}
	if !validText(owner) || !validText(name) {
		return vault.ErrNotFound
	}
	return v.exec(ctx, "delete", vault.ErrNotFound, v.q.del, owner, name)
}

// exec runs a write and returns none if it changed no row.
func (v *VaultStore) exec(ctx context.Context, op string, none error, query string, args ...any) error {
	res, err := v.s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return vaultErr(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return vaultErr(op, err)
	}
	if n == 0 {
		return none
	}
	return nil
}

// SetRevealed implements vault.Store.
func (v *VaultStore) SetRevealed(ctx context.Context, owner, name string, version int64, at time.Time) error {
	if err := v.s.check(ctx); err != nil {
		return err
	}
	if !validText(owner) || !validText(name) || at.IsZero() {
		return nil
	}
	return v.exec(ctx, "record reveal", nil, v.q.revealed, owner, name, version, v.s.timeArg(at))
}

// Rewrap implements vault.Store.
func (v *VaultStore) Rewrap(ctx context.Context, owner, name string, version int64, fromKEK, toKEK string, wrapped []byte) error {
	if err := v.s.check(ctx); err != nil {
		return err
	}
	if !validText(owner) || !validText(name) || !validText(fromKEK) || !validText(toKEK) {
		return fmt.Errorf("%w: sqlstore: vault: owner, name and KEK versions must be UTF-8 without NUL bytes", apikey.ErrInvalidRequest)
	}
	err := v.exec(ctx, "rewrap", vault.ErrConflict, v.q.rewrap, owner, name, version, fromKEK, toKEK, nonNil(wrapped))
	if errors.Is(err, vault.ErrConflict) {
		if _, gerr := v.Get(ctx, owner, name); errors.Is(gerr, vault.ErrNotFound) {
			return vault.ErrNotFound
		}
	}
	return err
}

// Stale implements vault.Store.
func (v *VaultStore) Stale(ctx context.Context, kek string, after vault.Ref, limit int) ([]vault.Record, error) {
	if err := v.s.check(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	if !validText(kek) || !validText(after.Owner) || !validText(after.Name) {
		return nil, fmt.Errorf("%w: sqlstore: vault: KEK version and cursor must be UTF-8 without NUL bytes", apikey.ErrInvalidRequest)
	}
	return v.query(ctx, "stale", v.q.stale, kek, after.Owner, after.Name, limit)
}

// scanVault reads one row of vaultColumns.
func scanVault(row interface{ Scan(...any) error }) (vault.Record, error) {
	var r vault.Record
	err := row.Scan(&r.Owner, &r.Name, &r.Version, &r.KEKVersion, &r.WrappedKey, &r.Nonce, &r.Ciphertext,
		&r.Hint, timeCol{&r.CreatedAt}, timeCol{&r.RevealedAt})
	return r, err
}

var _ vault.Store = (*VaultStore)(nil)
