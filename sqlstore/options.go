package sqlstore

import (
	"fmt"
	"time"

	"github.com/apikeykit/apikey"
)

// DefaultTablePrefix is the prefix of every table, trigger and
// notification channel the Store creates, unless WithTablePrefix says
// otherwise.
const DefaultTablePrefix = "apikey_"

// DefaultPollInterval is how often Watch reads the change log on SQLite
// and MySQL, unless WithPollInterval says otherwise.
const DefaultPollInterval = 250 * time.Millisecond

// Option configures a Store in New. An Option that cannot apply its
// argument returns an error wrapping apikey.ErrInvalidRequest, which New
// returns.
type Option func(*config) error

type config struct {
	prefix       string
	wait         NotifyWaiter
	pollInterval time.Duration
	ownDB        bool
}

// WithTablePrefix sets the prefix of the Store's tables (prefix+"keys",
// prefix+"quota_usage", prefix+"schema_version", ...) and, on PostgreSQL,
// of its notification channel (prefix+"changes"). It must be 1 to 32
// characters of [a-z0-9_] not starting with a digit. The default is
// DefaultTablePrefix. Stores with different prefixes can share a
// database.
func WithTablePrefix(prefix string) Option {
	return func(c *config) error {
		if !validPrefix(prefix) {
			return fmt.Errorf("%w: sqlstore: WithTablePrefix(%q): want 1 to 32 characters of [a-z0-9_], not starting with a digit", apikey.ErrInvalidRequest, prefix)
		}
		c.prefix = prefix
		return nil
	}
}

func validPrefix(p string) bool {
	if len(p) == 0 || len(p) > 32 || ('0' <= p[0] && p[0] <= '9') {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// WithNotifications gives a PostgreSQL Store the driver-specific half of
// Watch: wait blocks on a connection that is listening for the next
// notification. Package pglisten provides one for pgx (pglisten.Wait).
// Without it, Watch on PostgreSQL returns ErrNoNotifications and Managers
// see changes made elsewhere only when their cache entries expire. It has
// no effect on SQLite and MySQL. wait must not be nil.
func WithNotifications(wait NotifyWaiter) Option {
	return func(c *config) error {
		if wait == nil {
			return fmt.Errorf("%w: sqlstore: WithNotifications(nil)", apikey.ErrInvalidRequest)
		}
		c.wait = wait
		return nil
	}
}

// WithPollInterval sets how often Watch reads the change log on SQLite
// and MySQL (default DefaultPollInterval); d must be positive. It has no
// effect on PostgreSQL, where changes are pushed.
func WithPollInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: sqlstore: WithPollInterval(%v): want > 0", apikey.ErrInvalidRequest, d)
		}
		c.pollInterval = d
		return nil
	}
}

// WithCloseDB makes Close close the *sql.DB as well. Helpers that open the
// database for you (sqlopen.Open) set it; by default the caller owns db.
func WithCloseDB() Option {
	return func(c *config) error {
		c.ownDB = true
		return nil
	}
}
