package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"sync"
)

// The Store's queries are written once, with PostgreSQL's numbered
// placeholders ($1, $2, …), which may repeat and come in any order. SQLite
// reads ?1, ?2, … the same way, so its queries are rewritten once when
// they are built (sqlitePlaceholders). MySQL has only "?", each standing
// for the next argument, so on MySQL every query goes through a rebinder:
// it rewrites each $N to ?, once per query text, and on each call puts the
// arguments in the order the ?s need.

// storeDB is the Store's *sql.DB. On MySQL its Exec, Query, QueryRow and
// Prepare rebind their query; every other method is the *sql.DB's own.
type storeDB struct {
	*sql.DB
	rb *rebinder // nil but on MySQL
}

func (d storeDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	query, args = d.rb.bind(query, args)
	return d.DB.ExecContext(ctx, query, args...)
}

func (d storeDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	query, args = d.rb.bind(query, args)
	return d.DB.QueryContext(ctx, query, args...)
}

func (d storeDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	query, args = d.rb.bind(query, args)
	return d.DB.QueryRowContext(ctx, query, args...)
}

// PrepareContext prepares query. On MySQL query must use each of $1 … $N
// once, in order (as Get's does), since a prepared statement takes its
// arguments as they come.
func (d storeDB) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	if d.rb != nil {
		query = d.rb.parse(query).text
	}
	return d.DB.PrepareContext(ctx, query)
}

// querier is what a *sql.Tx and a *sql.Conn have in common.
type querier interface {
	execer
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// rebound is a *sql.Tx or *sql.Conn whose queries are rebound, as storeDB's.
type rebound struct {
	querier
	rb *rebinder
}

func (r rebound) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	query, args = r.rb.bind(query, args)
	return r.querier.ExecContext(ctx, query, args...)
}

func (r rebound) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	query, args = r.rb.bind(query, args)
	return r.querier.QueryContext(ctx, query, args...)
}

func (r rebound) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	query, args = r.rb.bind(query, args)
	return r.querier.QueryRowContext(ctx, query, args...)
}

// rebind returns q with its queries rebound on MySQL, q itself elsewhere.
func (s *Store) rebind(q querier) querier {
	if s.db.rb == nil {
		return q
	}
	return rebound{q, s.db.rb}
}

// rebinder rewrites $N placeholders to ?, remembering each query's
// rewrite. It is safe for concurrent use.
type rebinder struct {
	cache sync.Map // query text → *binding
}

// binding is a query rewritten for "?": text, and for each ? the number
// N of the $N it replaced. order is nil when the ?s take the arguments as
// they come ($1, $2, … $n, each once).
type binding struct {
	text  string
	order []int
	max   int  // the largest N
	bad   bool // a $0: the query is passed on as it is, for the driver to refuse
}

// bind returns query rewritten for ? and args in the order its ?s take
// them. A nil rebinder, or a call without arguments (a migration's DDL),
// returns both unchanged; so does a call with too few arguments, which the
// driver then refuses.
func (r *rebinder) bind(query string, args []any) (string, []any) {
	if r == nil || len(args) == 0 {
		return query, args
	}
	b := r.parse(query)
	if b.bad || b.max > len(args) {
		return query, args
	}
	if b.order == nil {
		return b.text, args
	}
	out := make([]any, len(b.order))
	for i, n := range b.order {
		out[i] = args[n-1]
	}
	return b.text, out
}

func (r *rebinder) parse(query string) *binding {
	if b, ok := r.cache.Load(query); ok {
		return b.(*binding)
	}
	b := parsePlaceholders(query)
	r.cache.Store(query, b)
	return b
}

// parsePlaceholders rewrites each $N outside quoted text ('…', "…", `…`)
// to ?. A $ not followed by a digit, such as a JSON path's '$[*]', stays.
func parsePlaceholders(query string) *binding {
	var (
		sb    strings.Builder
		order []int
		quote byte
	)
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
		case c == '$' && i+1 < len(query) && '0' <= query[i+1] && query[i+1] <= '9':
			n := 0
			for i+1 < len(query) && '0' <= query[i+1] && query[i+1] <= '9' && n < 1<<16 {
				i++
				n = n*10 + int(query[i]-'0')
			}
			order = append(order, n)
			sb.WriteByte('?')
			continue
		}
		sb.WriteByte(c)
	}
	b := &binding{text: sb.String()}
	inOrder := true
	for i, n := range order {
		b.max = max(b.max, n)
		b.bad = b.bad || n < 1
		if n != i+1 {
			inOrder = false
		}
	}
	if !inOrder {
		b.order = order
	}
	return b
}
