package sqlstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/sqlstore"
	"github.com/apikeykit/apikey/vault"
	"github.com/apikeykit/apikey/vault/vaulttest"
)

func TestVaultConformance(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, _ := b.open(t)
			st := newStore(t, db, b.dialect)
			vaulttest.Run(t, func() vault.Store { return st.Vault() })
		})
	}
}

// TestVaultNotMigrated: the vault's store fails clearly before Migrate,
// and works once the schema is at version 3.
func TestVaultNotMigrated(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, _ := b.open(t)
			st, err := sqlstore.New(db, b.dialect)
			if err != nil {
				t.Fatal(err)
			}
			v := newVault(t, st.Vault(), kekText("v1"))
			if _, err := v.Put(ctx, "o", "n", apikey.NewSecret(providerKey())); !errors.Is(err, sqlstore.ErrNotMigrated) {
				t.Fatalf("Put before Migrate: %v, want ErrNotMigrated", err)
			}
			if _, err := v.Reveal(ctx, "o", "n"); !errors.Is(err, sqlstore.ErrNotMigrated) {
				t.Fatalf("Reveal before Migrate: %v, want ErrNotMigrated", err)
			}
			if err := st.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if !tableExists(t, db, b.dialect, "apikey_vault_secrets") {
				t.Fatal("Migrate did not create apikey_vault_secrets")
			}
			if _, err := v.Put(ctx, "o", "n", apikey.NewSecret(providerKey())); err != nil {
				t.Fatalf("Put after Migrate: %v", err)
			}
		})
	}
}

// TestVaultMigrateFromVersion2: a database at schema version 2, with
// keys, migrates to 3; its keys are kept and the vault works.
func TestVaultMigrateFromVersion2(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, reopen := b.open(t)
			st := newStore(t, db, b.dialect)
			if err := st.Create(ctx, &apikey.Key{ID: "k1", Owner: "o", Digest: []byte{1}}); err != nil {
				t.Fatal(err)
			}
			// Back to version 2, as a database made before this release.
			undoVersion5(t, db, b.dialect)
			for _, q := range []string{`DROP TABLE apikey_legacy_keys`, `DROP TABLE apikey_vault_secrets`, `DELETE FROM apikey_schema_version WHERE version >= 3`} {
				if _, err := db.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			st2 := migrateAgain(t, b, reopen, "k1")
			if _, err := st2.Get(ctx, "k1"); err != nil {
				t.Fatalf("the key after migrating to 3: %v", err)
			}
			v := newVault(t, st2.Vault(), kekText("v1"))
			secret := providerKey()
			if _, err := v.Put(ctx, "o", "openai", apikey.NewSecret(secret)); err != nil {
				t.Fatal(err)
			}
			if s, err := v.Reveal(ctx, "o", "openai"); err != nil || s.Reveal() != secret {
				t.Fatalf("Reveal after migrating: %v", err)
			}
		})
	}
}

func ExampleStore_Vault() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "vault-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "vault.db")+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)")
	if err != nil {
		panic(err)
	}
	st, err := sqlstore.New(db, sqlstore.SQLite, sqlstore.WithCloseDB())
	if err != nil {
		panic(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		panic(err)
	}
	// In production: vault.LocalKEKFromEnv("APIKEY_VAULT_KEK"), or a KMS.
	kek, err := vault.ParseLocalKEK("v1:Zm9yIGV4YW1wbGVzIG9ubHksIG5ldmVyIHVzZSB0aGk=")
	if err != nil {
		panic(err)
	}
	v, err := vault.New(st.Vault(), kek)
	if err != nil {
		panic(err)
	}
	if _, err := v.Put(ctx, "customer-42", "anthropic", apikey.NewSecret("sk-ant-api03-0123456789abcdefWXYZ")); err != nil {
		panic(err)
	}
	es, _ := v.List(ctx, "customer-42")
	fmt.Println(es[0].Name, es[0].Masked, es[0].KEKVersion)
	// Output: anthropic sk-…WXYZ v1
}

// kekText returns a LocalKEK text form with one random key per version.
func kekText(versions ...string) string {
	var parts []string
	for _, v := range versions {
		k := make([]byte, vault.KEKSize)
		rand.Read(k)
		parts = append(parts, v+":"+base64.StdEncoding.EncodeToString(k))
	}
	return strings.Join(parts, ",")
}

func newVault(t *testing.T, st vault.Store, kek string, opts ...vault.Option) *vault.Vault {
	t.Helper()
	k, err := vault.ParseLocalKEK(kek)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(st, k, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// providerKey returns a random key shaped like a provider's.
func providerKey() string {
	b := make([]byte, 36)
	rand.Read(b)
	return "sk-proj-" + base64.RawURLEncoding.EncodeToString(b)
}

// TestVaultTampering: changing any byte of a stored ciphertext, nonce or
// wrapped key, or any other column the ciphertext depends on, makes
// Reveal fail; it never returns another plaintext. With the data-key
// cache on and off.
func TestVaultTampering(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		for _, cache := range []int{0, 100} {
			t.Run(fmt.Sprintf("%s/cache %d", b.name, cache), func(t *testing.T) {
				need(t, b)
				db, _ := b.open(t)
				st := newStore(t, db, b.dialect)
				v := newVault(t, st.Vault(), kekText("v1"), vault.WithDataKeyCache(cache, 60e9))
				secret := providerKey()
				if _, err := v.Put(ctx, "alice", "openai", apikey.NewSecret(secret)); err != nil {
					t.Fatal(err)
				}
				reveal := func(what string) error {
					t.Helper()
					s, err := v.Reveal(ctx, "alice", "openai")
					if err == nil {
						t.Fatalf("%s: Reveal succeeded (same plaintext: %v)", what, s.Reveal() == secret)
					}
					if !s.IsZero() {
						t.Fatalf("%s: Reveal returned a secret with its error", what)
					}
					if strings.Contains(err.Error(), secret) {
						t.Fatalf("%s: the error holds the secret", what)
					}
					return err
				}
				if s, err := v.Reveal(ctx, "alice", "openai"); err != nil || s.Reveal() != secret {
					t.Fatalf("Reveal before tampering: %v", err)
				}
				for _, col := range []string{"wrapped_key", "nonce", "ciphertext"} {
					var orig []byte
					if err := db.QueryRow(dialectSQL(b.dialect, `SELECT `+col+` FROM apikey_vault_secrets WHERE owner = $1 AND name = $2`), "alice", "openai").Scan(&orig); err != nil {
						t.Fatal(err)
					}
					set := func(val []byte) {
						t.Helper()
						if _, err := db.Exec(dialectSQL(b.dialect, `UPDATE apikey_vault_secrets SET `+col+` = $1 WHERE owner = $2 AND name = $3`), val, "alice", "openai"); err != nil {
							t.Fatal(err)
						}
					}
					variants := map[string][]byte{"truncated": orig[:len(orig)-1], "extended": append(bytes.Clone(orig), 0), "empty": {}}
					for i := range orig {
						for _, mask := range []byte{0x01, 0x80} {
							flipped := bytes.Clone(orig)
							flipped[i] ^= mask
							variants[fmt.Sprintf("byte %d ^ %#x", i, mask)] = flipped
						}
					}
					for what, val := range variants {
						set(val)
						if err := reveal(col + " " + what); !errors.Is(err, vault.ErrDecrypt) {
							t.Fatalf("%s %s: %v, want ErrDecrypt", col, what, err)
						}
					}
					set(orig)
					if s, err := v.Reveal(ctx, "alice", "openai"); err != nil || s.Reveal() != secret {
						t.Fatalf("Reveal after restoring %s: %v", col, err)
					}
				}
				// The columns the additional data binds.
				for _, tt := range []struct {
					set, undo string
					want      error
				}{
					{`version = version + 1`, `version = version - 1`, vault.ErrDecrypt},
					{`hint = 'sk-…abcd'`, ``, vault.ErrDecrypt},
					{`kek_version = 'v0'`, `kek_version = 'v1'`, vault.ErrUnknownKEKVersion},
				} {
					var hint string
					db.QueryRow(`SELECT hint FROM apikey_vault_secrets`).Scan(&hint)
					if _, err := db.Exec(`UPDATE apikey_vault_secrets SET ` + tt.set); err != nil {
						t.Fatal(err)
					}
					if err := reveal(tt.set); !errors.Is(err, tt.want) {
						t.Fatalf("%s: %v, want %v", tt.set, err, tt.want)
					}
					undo := tt.undo
					if undo == "" {
						undo = `hint = '` + hint + `'`
					}
					if _, err := db.Exec(`UPDATE apikey_vault_secrets SET ` + undo); err != nil {
						t.Fatal(err)
					}
					if s, err := v.Reveal(ctx, "alice", "openai"); err != nil || s.Reveal() != secret {
						t.Fatalf("Reveal after undoing %s: %v", tt.set, err)
					}
				}
			})
		}
	}
}

// TestVaultSwappedRows: a row's cryptographic columns moved to another
// owner or another name do not decrypt there.
func TestVaultSwappedRows(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, _ := b.open(t)
			st := newStore(t, db, b.dialect)
			v := newVault(t, st.Vault(), kekText("v1"), vault.WithDataKeyCache(0, 0))
			refs := []vault.Ref{{Owner: "alice", Name: "openai"}, {Owner: "bob", Name: "openai"}, {Owner: "alice", Name: "anthropic"}}
			secrets := map[vault.Ref]string{}
			for _, r := range refs {
				secrets[r] = providerKey()
				if _, err := v.Put(ctx, r.Owner, r.Name, apikey.NewSecret(secrets[r])); err != nil {
					t.Fatal(err)
				}
			}
			cols := `kek_version, wrapped_key, nonce, ciphertext, hint, version`
			swap := func(a, b vault.Ref) {
				t.Helper()
				type row struct {
					kek, hint string
					wk, n, ct []byte
					version   int64
				}
				read := func(r vault.Ref) row {
					var x row
					if err := db.QueryRow(dialectSQL(st.Dialect(), `SELECT `+cols+` FROM apikey_vault_secrets WHERE owner = $1 AND name = $2`), r.Owner, r.Name).
						Scan(&x.kek, &x.wk, &x.n, &x.ct, &x.hint, &x.version); err != nil {
						t.Fatal(err)
					}
					return x
				}
				write := func(r vault.Ref, x row) {
					if _, err := db.Exec(dialectSQL(st.Dialect(), `UPDATE apikey_vault_secrets SET kek_version = $1, wrapped_key = $2, nonce = $3, ciphertext = $4, hint = $5, version = $6 WHERE owner = $7 AND name = $8`),
						x.kek, x.wk, x.n, x.ct, x.hint, x.version, r.Owner, r.Name); err != nil {
						t.Fatal(err)
					}
				}
				ra, rb := read(a), read(b)
				write(a, rb)
				write(b, ra)
			}
			for _, pair := range [][2]vault.Ref{{refs[0], refs[1]}, {refs[0], refs[2]}} {
				swap(pair[0], pair[1])
				for _, r := range pair {
					s, err := v.Reveal(ctx, r.Owner, r.Name)
					if !errors.Is(err, vault.ErrDecrypt) || !s.IsZero() {
						t.Fatalf("%v after swapping %v and %v: %v, want ErrDecrypt", r, pair[0], pair[1], err)
					}
				}
				swap(pair[0], pair[1])
				for _, r := range refs {
					if s, err := v.Reveal(ctx, r.Owner, r.Name); err != nil || s.Reveal() != secrets[r] {
						t.Fatalf("%v after swapping back: %v", r, err)
					}
				}
			}
		})
	}
}

// TestVaultRotateKEK: after RotateKEK, every secret reveals with the new
// KEK version alone; before it, a KEK without the old version fails
// clearly, and a KEK with another key under the old name fails too.
func TestVaultRotateKEK(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, _ := b.open(t)
			st := newStore(t, db, b.dialect)
			oldText, newText := kekText("v1"), kekText("v2")
			v1 := newVault(t, st.Vault(), oldText)
			secrets := map[vault.Ref]string{}
			// More than one of RotateKEK's pages.
			for i := range 230 {
				r := vault.Ref{Owner: fmt.Sprintf("owner-%03d", i%17), Name: fmt.Sprintf("provider-%d", i)}
				secrets[r] = providerKey()
				if _, err := v1.Put(ctx, r.Owner, r.Name, apikey.NewSecret(secrets[r])); err != nil {
					t.Fatal(err)
				}
			}
			var ciphertexts []byte
			if err := db.QueryRow(`SELECT ciphertext FROM apikey_vault_secrets WHERE name = 'provider-0'`).Scan(&ciphertexts); err != nil {
				t.Fatal(err)
			}

			onlyNew := newVault(t, st.Vault(), newText)
			_, err := onlyNew.Reveal(ctx, "owner-000", "provider-0")
			if !errors.Is(err, vault.ErrUnknownKEKVersion) || !strings.Contains(err.Error(), `"v1"`) {
				t.Fatalf("Reveal without the old KEK version: %v, want ErrUnknownKEKVersion naming v1", err)
			}
			wrongKey := newVault(t, st.Vault(), kekText("v1"))
			if _, err := wrongKey.Reveal(ctx, "owner-000", "provider-0"); !errors.Is(err, vault.ErrDecrypt) {
				t.Fatalf("Reveal with another key named v1: %v, want ErrDecrypt", err)
			}

			both := newVault(t, st.Vault(), newText+","+oldText)
			n, err := both.RotateKEK(ctx)
			if err != nil || n != len(secrets) {
				t.Fatalf("RotateKEK = %d, %v; want %d", n, err, len(secrets))
			}
			if n, err := both.RotateKEK(ctx); err != nil || n != 0 {
				t.Fatalf("second RotateKEK = %d, %v; want 0", n, err)
			}
			var after []byte
			if err := db.QueryRow(`SELECT ciphertext FROM apikey_vault_secrets WHERE name = 'provider-0'`).Scan(&after); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(after, ciphertexts) {
				t.Fatal("RotateKEK changed a ciphertext: it must re-wrap data keys only")
			}
			var stale int
			if err := db.QueryRow(`SELECT COUNT(*) FROM apikey_vault_secrets WHERE kek_version <> 'v2'`).Scan(&stale); err != nil || stale != 0 {
				t.Fatalf("%d rows not wrapped by v2 (%v)", stale, err)
			}
			// The old version removed: everything still reveals.
			onlyNew = newVault(t, st.Vault(), newText)
			for r, want := range secrets {
				s, err := onlyNew.Reveal(ctx, r.Owner, r.Name)
				if err != nil || s.Reveal() != want {
					t.Fatalf("Reveal %v after rotation with the new KEK alone: %v", r, err)
				}
			}
		})
	}
}

// TestVaultNoPlaintextAtRest scans the SQLite file, its WAL and SHM, and
// a dump of every PostgreSQL table, and every log line and error, for the
// secrets, in the clear, in hex and in base64.
func TestVaultNoPlaintextAtRest(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			var db *sql.DB
			var path string
			if b.dialect == sqlstore.SQLite {
				path = filepath.Join(t.TempDir(), "vault.db")
				var err error
				if db, err = sql.Open("sqlite", sqliteDSN(path)); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
			} else {
				db, _ = b.open(t)
			}
			st := newStore(t, db, b.dialect)
			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, nil))
			v := newVault(t, st.Vault(), kekText("v2", "v1"), vault.WithRevealResolution(0),
				vault.WithAudit(func(_ context.Context, e vault.AuditEvent) {
					logger.Info("vault", "event", e, "err", e.Err)
				}))
			var secrets []string
			for i := range 20 {
				s := providerKey()
				secrets = append(secrets, s)
				owner, name := fmt.Sprintf("owner-%d", i%3), fmt.Sprintf("key-%d", i)
				e, err := v.Put(ctx, owner, name, apikey.NewSecret(s))
				if err != nil {
					t.Fatal(err)
				}
				logger.Info("put", "entry", e)
				got, err := v.Reveal(ctx, owner, name)
				if err != nil || got.Reveal() != s {
					t.Fatal(err)
				}
				logger.Info("revealed", "secret", got)
				_, err = v.Reveal(ctx, owner, "missing")
				logger.Info("missing", "err", err)
			}
			// A refused validation, whose error quotes the key.
			_, err := v.Put(ctx, "owner-0", "bad", apikey.NewSecret(secrets[0]), vault.WithValidation(func(_ context.Context, s apikey.Secret) error {
				return fmt.Errorf("provider says 401 for %s", s.Reveal())
			}))
			if !errors.Is(err, vault.ErrValidation) {
				t.Fatalf("validation: %v", err)
			}
			logger.Info("validation", "err", err)
			es, err := v.List(ctx, "owner-0")
			if err != nil {
				t.Fatal(err)
			}
			logger.Info("list", "entries", es, "text", fmt.Sprintf("%v %+v %#v", es, es, es))

			var blobs [][]byte
			if b.dialect == sqlstore.SQLite {
				for _, suffix := range []string{"", "-wal", "-shm"} {
					data, err := os.ReadFile(path + suffix)
					if err != nil {
						t.Fatalf("read %s: %v", filepath.Base(path+suffix), err)
					}
					blobs = append(blobs, data)
				}
				if len(blobs[1]) == 0 {
					t.Fatal("the WAL is empty: the scan would prove nothing")
				}
				// Closed, the WAL is checkpointed into the file: scan that too.
				db.Close()
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				blobs = append(blobs, data)
			} else if b.dialect == sqlstore.MySQL {
				blobs = append(blobs, mysqlDump(t, db))
			} else {
				blobs = append(blobs, postgresDump(t, db))
			}
			blobs = append(blobs, logs.Bytes())
			all := bytes.Join(blobs, nil)
			// The scan sees the data: the masked hints are there.
			if !bytes.Contains(all, []byte(vault.Mask(secrets[0]))) {
				t.Fatal("the dump does not hold the stored hints: the scan reads the wrong bytes")
			}
			for i, s := range secrets {
				middle := s[3 : len(s)-4]
				for _, needle := range []string{s, middle, middle[:16], middle[len(middle)-16:], hex.EncodeToString([]byte(middle)),
					base64.StdEncoding.EncodeToString([]byte(s)), base64.RawStdEncoding.EncodeToString([]byte(middle))[:20]} {
					for j, blob := range blobs {
						if bytes.Contains(blob, []byte(needle)) {
							t.Fatalf("secret %d found in blob %d (%d bytes)", i, j, len(blob))
						}
					}
				}
			}
		})
	}
}

// postgresDump returns every row of every table in the test's schema, as
// text and as raw bytea.
func postgresDump(t *testing.T, db *sql.DB) []byte {
	t.Helper()
	rows, err := db.Query(`SELECT tablename FROM pg_tables WHERE schemaname = current_schema()`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	if len(tables) < 3 {
		t.Fatalf("found only tables %q", tables)
	}
	var out bytes.Buffer
	for _, tbl := range tables {
		rows, err := db.Query(`SELECT row_to_json(t)::text FROM ` + tbl + ` t`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			rows.Scan(&s)
			out.WriteString(s + "\n")
		}
		rows.Close()
	}
	rows, err = db.Query(`SELECT wrapped_key, nonce, ciphertext, convert_to(hint, 'UTF8') FROM apikey_vault_secrets`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var a, b, c, d []byte
		rows.Scan(&a, &b, &c, &d)
		out.Write(bytes.Join([][]byte{a, b, c, d}, nil))
	}
	return out.Bytes()
}

// TestVaultConcurrent: concurrent Puts and Reveals, of one secret and of
// many, under -race; every Reveal returns a value some Put stored.
func TestVaultConcurrent(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, _ := b.open(t)
			st := newStore(t, db, b.dialect)
			v := newVault(t, st.Vault(), kekText("v1"), vault.WithRevealResolution(0))
			var mu sync.Mutex
			stored := map[string]bool{}
			first := providerKey()
			stored[first] = true
			if _, err := v.Put(ctx, "shared", "openai", apikey.NewSecret(first)); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for w := range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 10 {
						s := providerKey()
						mu.Lock()
						stored[s] = true
						mu.Unlock()
						name := "openai"
						if i%2 == 1 {
							name = fmt.Sprintf("own-%d", w)
						}
						if _, err := v.Put(ctx, "shared", name, apikey.NewSecret(s)); err != nil && !errors.Is(err, vault.ErrConflict) {
							t.Error(err)
							return
						}
						got, err := v.Reveal(ctx, "shared", "openai")
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						ok := stored[got.Reveal()]
						mu.Unlock()
						if !ok {
							t.Error("Reveal returned a value no Put stored")
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}
