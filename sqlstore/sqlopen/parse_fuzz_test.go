package sqlopen

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/apikeykit/apikey/sqlstore"
)

// FuzzParseDSN: any string either fails with ErrBadDSN, without repeating
// a password it may hold, or maps to a driver and dialect that agree.
func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{
		"sqlite:keys.db", "sqlite:/var/lib/x.db?_pragma=busy_timeout(1)", "file:keys.db?mode=ro",
		"postgres://acme:s3cret@db:5432/acme?sslmode=disable", "postgresql://h/d", "mysql://x", "",
		"mysql://acme:s3cret@db:3306/acme?tls=true&timeout=5s", "mariadb://u:pw@[::1]:3307/d?time_zone=%27%2B01%3A00%27",
		"mysql://u:pw@/d?socket=/run/mysqld/mysqld.sock", "mysql://u:pw@h/d?clientFoundRows=1",
		"sqlite:", "postgres://%zz", "postgres://u:pw@[::1/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		driver, source, dialect, err := parse(dsn)
		if err != nil {
			if !errors.Is(err, ErrBadDSN) {
				t.Fatalf("parse(%q): error %v does not match ErrBadDSN", dsn, err)
			}
			if _, rest, ok := strings.Cut(dsn, "://"); ok {
				if userinfo, _, ok := strings.Cut(rest, "@"); ok {
					// A password that also occurs elsewhere in the DSN (as
					// its scheme, say) may be quoted as that part, and %q
					// may make it of the escapes around it ("\x80000").
					_, pw, ok := strings.Cut(userinfo, ":")
					others := strings.Replace(dsn, pw, "", 1)
					elsewhere := strings.Contains(others, pw) || strings.Contains(fmt.Sprintf("%q", others), pw)
					if ok && len(pw) >= 4 && !elsewhere && strings.Contains(err.Error(), pw) {
						t.Fatalf("parse(%q): error repeats the password: %v", dsn, err)
					}
				}
			}
			return
		}
		switch {
		case driver == "sqlite" && dialect == sqlstore.SQLite && strings.HasPrefix(source, "file:"):
		case driver == "pgx" && dialect == sqlstore.Postgres && source == dsn:
		case driver == "mysql" && dialect == sqlstore.MySQL:
			cfg, err := mysql.ParseDSN(source)
			if err != nil || cfg.DBName == "" || cfg.ClientFoundRows || !cfg.ParseTime || cfg.Loc != time.UTC || cfg.Params["time_zone"] == "" {
				t.Fatalf("parse(%q) = %q, which the driver reads as %+v, %v", dsn, source, cfg, err)
			}
		default:
			t.Fatalf("parse(%q) = %q, %q, %v", dsn, driver, source, dialect)
		}
	})
}
