package sqlstore

import (
	"slices"
	"strings"
	"testing"
)

func TestParsePlaceholders(t *testing.T) {
	tests := []struct {
		name, query, text string
		order             []int
		args              []any
		want              []any
	}{
		{"in order", `SELECT a FROM t WHERE a = $1 AND b = $2`, `SELECT a FROM t WHERE a = ? AND b = ?`, nil,
			[]any{"x", 2}, []any{"x", 2}},
		{"out of order", `UPDATE t SET a = $2 WHERE id = $1`, `UPDATE t SET a = ? WHERE id = ?`, []int{2, 1},
			[]any{"id", "a"}, []any{"a", "id"}},
		{"repeated", `SELECT $1 WHERE $1 <= $2`, `SELECT ? WHERE ? <= ?`, []int{1, 1, 2},
			[]any{1, 5}, []any{1, 1, 5}},
		{"two digits", `VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, `VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, nil,
			[]any{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, []any{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
		{"JSON path", `JSON_TABLE($1, '$[*]' COLUMNS (id TEXT PATH '$[0]'))`, `JSON_TABLE(?, '$[*]' COLUMNS (id TEXT PATH '$[0]'))`, nil,
			[]any{"[]"}, []any{"[]"}},
		{"quoted", `SELECT '$1', "$2", ` + "`$3`" + `, $1`, `SELECT '$1', "$2", ` + "`$3`" + `, ?`, nil,
			[]any{"x"}, []any{"x"}},
		{"dollar alone", `SELECT $ + $a + $1`, `SELECT $ + $a + ?`, nil, []any{1}, []any{1}},
		{"no arguments", `CREATE TABLE t (a INT)`, `CREATE TABLE t (a INT)`, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := parsePlaceholders(tt.query)
			if b.text != tt.text || !slices.Equal(b.order, tt.order) {
				t.Fatalf("parsePlaceholders(%q) = %q, %v; want %q, %v", tt.query, b.text, b.order, tt.text, tt.order)
			}
			var r rebinder
			q, args := r.bind(tt.query, tt.args)
			if len(tt.args) > 0 && q != tt.text {
				t.Fatalf("bind: query %q, want %q", q, tt.text)
			}
			if !slices.Equal(args, tt.want) {
				t.Fatalf("bind: args %v, want %v", args, tt.want)
			}
		})
	}
	// Too few arguments, or $0: passed on as they are, for the driver to refuse.
	var r rebinder
	for _, q := range []string{`SELECT $1, $2`, `SELECT $0`} {
		if got, args := r.bind(q, []any{1}); got != q || len(args) != 1 {
			t.Fatalf("bind(%q, 1 argument) = %q, %v; want both unchanged", q, got, args)
		}
	}
	// A nil rebinder (SQLite, PostgreSQL) changes nothing.
	var none *rebinder
	if q, _ := none.bind(`SELECT $1`, []any{1}); q != `SELECT $1` {
		t.Fatalf("nil rebinder rewrote the query: %q", q)
	}
}

// FuzzParsePlaceholders: any query text rebinds without panicking, with
// any number of arguments; no $N is left outside quotes, and each ? added
// takes an argument that exists.
func FuzzParsePlaceholders(f *testing.F) {
	for _, s := range []string{`SELECT $1 WHERE $2 = $1`, `'$1' $1`, `$`, `$99999999999999999999`, `"unterminated $1`, "`$1` $2", `$0`} {
		f.Add(s, uint8(2))
	}
	f.Fuzz(func(t *testing.T, query string, n uint8) {
		b := parsePlaceholders(query)
		if len(b.text) > len(query) {
			t.Fatalf("rewrite %q is longer than %q", b.text, query)
		}
		args := make([]any, n)
		for i := range args {
			args[i] = i + 1
		}
		var r rebinder
		q, out := r.bind(query, args)
		if q == b.text && len(args) > 0 && !b.bad && b.max <= len(args) && b.order != nil {
			if len(out) != len(b.order) {
				t.Fatalf("%d arguments for %d placeholders", len(out), len(b.order))
			}
			for i, a := range out {
				if a.(int) != b.order[i] {
					t.Fatalf("argument %d is $%d, want $%d", i, a, b.order[i])
				}
			}
		}
	})
}

func TestSplitStatements(t *testing.T) {
	body := "-- a comment;\nCREATE TABLE a (\n\tx INT -- inline\n);\n\nCREATE TRIGGER t AFTER INSERT ON a FOR EACH ROW\nBEGIN\n\tINSERT INTO b VALUES (1);\n\tDELETE FROM b;\nEND;\nDROP TABLE c"
	got := splitStatements(body)
	want := []string{
		"CREATE TABLE a (\n\tx INT -- inline\n)",
		"CREATE TRIGGER t AFTER INSERT ON a FOR EACH ROW\nBEGIN\n\tINSERT INTO b VALUES (1);\n\tDELETE FROM b;\nEND",
		"DROP TABLE c",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("splitStatements = %q, want %q", got, want)
	}
	// Every MySQL migration splits into statements that each end where
	// the file's author meant: none holds two CREATE or DROP statements.
	ms, err := migrations(MySQL)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		stmts := splitStatements(m.sql)
		if len(stmts) == 0 {
			// Only a migration of nothing but comments may have none.
			for line := range strings.Lines(m.sql) {
				if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "--") {
					t.Fatalf("%s: no statements found in %q", m.name, m.sql)
				}
			}
		}
		for _, s := range stmts {
			if n := strings.Count(s, "\nCREATE ") + strings.Count(s, "\nDROP ") + strings.Count(s, "\nALTER "); n > 0 {
				t.Fatalf("%s: a statement holds another: %q", m.name, s)
			}
		}
	}
}

// FuzzSplitStatements: any text splits without panicking into non-empty
// statements, and no non-comment text is lost.
func FuzzSplitStatements(f *testing.F) {
	f.Add("CREATE TABLE a (x INT);\nBEGIN\n\tA;\nEND;\n")
	f.Add("-- only a comment\n;\n\t;\n")
	f.Fuzz(func(t *testing.T, body string) {
		stmts := splitStatements(body)
		kept := 0
		for _, s := range stmts {
			if strings.TrimSpace(s) == "" {
				t.Fatalf("empty statement in %q", stmts)
			}
			kept += len(strings.Join(strings.Fields(s), ""))
		}
		total := 0
		for line := range strings.Lines(body) {
			if tl := strings.TrimSpace(line); tl != "" && !strings.HasPrefix(tl, "--") {
				total += len(strings.Join(strings.Fields(line), ""))
			}
		}
		// Only the ";" ending each statement is dropped.
		if kept < total-strings.Count(body, ";") || kept > total {
			t.Fatalf("%d bytes of %d kept in %d statements", kept, total, len(stmts))
		}
	})
}
