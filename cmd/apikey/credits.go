package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/envconfig"
	"github.com/apikeykit/apikey/redislimit"
	"github.com/apikeykit/apikey/sqlstore/sqlopen"
)

// creditsView is what apikey credits prints: a balance, after the top-up
// if one was asked for.
type creditsView struct {
	// Ledger names where the balance is: "database" or "redis". A
	// service's default Ledger, the Manager's own in its memory, is
	// neither, and the command cannot see it.
	Ledger     string    `json:"ledger"`
	LedgerKey  string    `json:"ledger_key"`
	KeyID      string    `json:"key_id,omitempty"`
	Owner      string    `json:"owner,omitempty"`
	Credits    string    `json:"credits"`
	Balance    int64     `json:"balance"`
	Limit      int64     `json:"limit"` // the period's grant plus the top-ups it can spend
	NextRefill time.Time `json:"next_refill,omitzero"`
	ToppedUp   int64     `json:"topped_up,omitempty"`
}

// runCredits shows a credit balance, a key's own (--key, under the key's
// Credits) or an owner's (--owner, under --policy: the services'
// Limits.PerOwnerCredits, which the database does not hold), and tops it
// up with --top-up. Balances are in the database's Ledger unless --redis
// names the Redis of redislimit's.
func runCredits(ctx context.Context, e *env, args []string) error {
	fs, db, asJSON := flagSet(e, "credits", "--key ID | --owner O --policy CREDITS [--top-up N] [--redis URL]")
	key := fs.String("key", "", "a key's own balance, by ID (or the whole key), under its credits")
	owner := fs.String("owner", "", "an owner's balance (Limits.PerOwnerCredits), under --policy")
	policy := fs.String("policy", "", "the credits the balance is kept under, e.g. 1000/month@15 (required with --owner; with --key, instead of the key's)")
	topUp := fs.String("top-up", "", "add N credits that do not expire, then show the balance")
	redisURL := fs.String("redis", "", "the Redis of the services' redislimit Ledger, e.g. redis://host:6379/0 (default: the database's Ledger)")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	bad := func(format string, a ...any) error {
		fmt.Fprintf(e.stderr, "apikey credits: "+format+"\n", a...)
		return errUsage
	}
	switch {
	case (*key == "") == (*owner == ""):
		return bad("give --key or --owner, not both")
	case *owner != "" && *policy == "":
		return bad("--owner needs --policy, the services' Limits.PerOwnerCredits (e.g. 100000/month)")
	}
	var (
		c   apikey.Credits
		n   int64
		err error
	)
	if *policy != "" {
		if c, err = apikey.ParseCredits(*policy); err != nil {
			return fmt.Errorf("--policy: %w", err)
		}
	}
	if *topUp != "" {
		if n, err = strconv.ParseInt(*topUp, 10, 64); err != nil || n < 1 || n > apikey.MaxCredits {
			return bad("--top-up %q: want a whole number from 1 to %d", *topUp, apikey.MaxCredits)
		}
	}
	v := creditsView{Owner: *owner, LedgerKey: apikey.OwnerCreditsKey(*owner)}
	if *key != "" {
		if v.KeyID, err = keyID(*key); err != nil {
			return err
		}
		v.Owner = ""
	}

	// The database: for the key's record, and for its Ledger unless --redis.
	var ledger apikey.Ledger
	if *key != "" || *redisURL == "" {
		dsn, err := envconfig.DSN(*db)
		if err != nil {
			return explain(err)
		}
		if err := sqliteExists(dsn); err != nil {
			return err
		}
		st, err := sqlopen.Open(ctx, dsn)
		if err != nil {
			return err
		}
		defer st.Close()
		if *key != "" {
			k, err := st.Get(ctx, v.KeyID)
			if err != nil {
				return notFoundHint(explain(err), v.KeyID)
			}
			if c.IsZero() {
				c = k.Credits
			}
			if c.IsZero() {
				return fmt.Errorf("key %s has no credits: set them with apikey update %s --credits 1000/month, or give --policy", k.ID, k.ID)
			}
			v.LedgerKey = apikey.CreditsKey(k)
		}
		ledger, v.Ledger = st.Ledger(), "database"
	}
	if *redisURL != "" {
		opt, err := redis.ParseURL(*redisURL)
		if err != nil {
			return bad("--redis: %v", err)
		}
		// Fail in seconds, with one error of ours, not go-redis's retries
		// logged to the process's own standard error.
		opt.ContextTimeoutEnabled, opt.DialerRetries, opt.MaxRetries = true, 1, -1
		redis.SetLogger(stderrLogger{e})
		client := redis.NewClient(opt)
		defer client.Close()
		if ledger, err = redislimit.NewLedger(client); err != nil {
			return err
		}
		v.Ledger = "redis"
	}
	v.Credits = c.String()

	if n > 0 {
		if _, err := ledger.TopUp(ctx, v.LedgerKey, c, n); err != nil {
			if errors.Is(err, apikey.ErrInvalidRequest) {
				return fmt.Errorf("--top-up %d: refused, nothing was added: %w", n, err)
			}
			return explain(err)
		}
		v.ToppedUp = n
	}
	now := time.Now()
	d, err := ledger.Spend(ctx, v.LedgerKey, c, 0)
	if err != nil {
		return explain(err)
	}
	v.Balance, v.Limit = d.Remaining, d.Limit
	if d.Reset > 0 {
		v.NextRefill = now.Add(d.Reset).UTC().Round(time.Second)
	}
	if *asJSON {
		return writeJSON(e.stdout, v)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ledger\t%s\n", ledgerName[v.Ledger])
	fmt.Fprintf(tw, "ledger key\t%s\n", v.LedgerKey)
	fmt.Fprintf(tw, "credits\t%s\n", v.Credits)
	if v.ToppedUp > 0 {
		fmt.Fprintf(tw, "topped up\t%d\n", v.ToppedUp)
	}
	fmt.Fprintf(tw, "balance\t%d\n", v.Balance)
	fmt.Fprintf(tw, "this period\t%d (grant %d, top-ups %d)\n", v.Limit, c.Grant, v.Limit-c.Grant)
	refill := "never"
	if !v.NextRefill.IsZero() {
		refill = v.NextRefill.Format(time.RFC3339)
	}
	fmt.Fprintf(tw, "next refill\t%s\n", refill)
	return tw.Flush()
}

// ledgerName says in the table where the balance was read, and that a
// service on its Manager's own ledger keeps its balances elsewhere.
var ledgerName = map[string]string{
	"database": "the database's (sqlstore's Ledger, st.Ledger(); not a Manager's own, in its memory)",
	"redis":    "Redis (redislimit's Ledger)",
}

// stderrLogger sends go-redis's log lines to the command's standard
// error, which redacts.
type stderrLogger struct{ e *env }

func (l stderrLogger) Printf(_ context.Context, format string, v ...any) {
	fmt.Fprintf(l.e.stderr, format+"\n", v...)
}
