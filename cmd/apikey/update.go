package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/apikeykit/apikey"
)

// runUpdate changes the fields of one key that its flags name, through
// Manager.Update, which checks them by Issue's rules: a change it refuses
// writes nothing. An empty value clears a field: --expires "" never
// expires, --allow-ip "" allows any address, --scopes "" grants none.
// --scopes, --allow-ip and --meta replace the whole list or map.
func runUpdate(ctx context.Context, e *env, args []string) error {
	fs, db, asJSON := flagSet(e, "update", "ID|KEY [flags]")
	name := fs.String("name", "", "a new label; \"\" clears it")
	expires := fs.String("expires", "", "when the key stops working: "+timeSyntax+"; \"\" never")
	notBefore := fs.String("not-before", "", "when the key starts working, in the same forms; \"\" at once")
	rate := fs.String("rate", "", "rate limit, e.g. 100/m; \"\" none")
	quota := fs.String("quota", "", "usage cap, e.g. 10000/24h; \"\" none")
	credits := fs.String("credits", "", "credit balance, e.g. 1000/d, 1000/month@15, or 5000 once; \"\" none")
	var scopes, allowIPs, meta listFlag
	fs.Var(&scopes, "scopes", "the scopes granted, replacing the current ones, comma-separated; \"\" none")
	fs.Var(&allowIPs, "allow-ip", "client addresses allowed, CIDR, replacing the current ones, comma-separated or repeated; \"\" any address")
	fs.Var(&meta, "meta", "metadata key=value, replacing the current metadata, comma-separated or repeated; \"\" none")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	id, err := keyID(pos[0])
	if err != nil {
		return err
	}
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	delete(given, "db")
	delete(given, "json")
	if len(given) == 0 {
		fmt.Fprintln(e.stderr, "apikey update: nothing to change: give at least one of the flags below")
		fs.Usage()
		return errUsage
	}
	for _, f := range []struct {
		name   string
		values []string
	}{{"name", []string{*name}}, {"scopes", scopes}, {"meta", meta}} {
		if err := refuseKeys(f.name, f.values...); err != nil {
			return err
		}
	}

	var u apikey.KeyUpdate
	now := time.Now()
	if given["name"] {
		u.Name = name
	}
	if given["scopes"] {
		u.Scopes = (*[]string)(&scopes)
	}
	if given["expires"] {
		var t time.Time
		if *expires != "" {
			if t, err = parseTime(*expires, now); err != nil || !t.After(now) {
				return fmt.Errorf("--expires %q: want a time in the future (to stop the key now: apikey suspend or revoke): %s", *expires, timeSyntax)
			}
		}
		u.ExpiresAt = &t
	}
	if given["not-before"] {
		var t time.Time
		if *notBefore != "" {
			if t, err = parseTime(*notBefore, now); err != nil {
				return fmt.Errorf("--not-before %q: %w", *notBefore, err)
			}
		}
		u.NotBefore = &t
	}
	if given["rate"] {
		var l apikey.Limit
		if *rate != "" {
			if l, err = apikey.ParseLimit(*rate); err != nil {
				return fmt.Errorf("--rate: %w", err)
			}
		}
		u.RateLimit = &l
	}
	if given["quota"] {
		var q apikey.Quota
		if *quota != "" {
			if q, err = apikey.ParseQuota(*quota); err != nil {
				return fmt.Errorf("--quota: %w", err)
			}
		}
		u.Quota = &q
	}
	if given["credits"] {
		var c apikey.Credits
		if *credits != "" {
			if c, err = apikey.ParseCredits(*credits); err != nil {
				return fmt.Errorf("--credits: %w", err)
			}
		}
		u.Credits = &c
	}
	if given["allow-ip"] {
		ips, err := parseAllowIPs(allowIPs)
		if err != nil {
			return err
		}
		u.AllowedIPs = &ips
	}
	if given["meta"] {
		md, err := parseMeta(meta)
		if err != nil {
			return err
		}
		u.Metadata = &md
	}

	m, done, err := openManager(ctx, e, *db, noDigests)
	if err != nil {
		return err
	}
	defer done()
	k, err := m.Update(ctx, id, u)
	if err != nil {
		return notFoundHint(explain(err), id)
	}
	return printKey(e, k, *asJSON)
}

// runSuspend stops a key at once, everywhere (Manager.Suspend), until
// resume. Suspending a suspended key changes nothing.
func runSuspend(ctx context.Context, e *env, args []string) error {
	return setSuspended(ctx, e, "suspend", args)
}

// runResume lets a suspended key work again (Manager.Resume), unless it is
// revoked or expired. Resuming a key that is not suspended changes
// nothing.
func runResume(ctx context.Context, e *env, args []string) error {
	return setSuspended(ctx, e, "resume", args)
}

func setSuspended(ctx context.Context, e *env, cmd string, args []string) error {
	fs, db, asJSON := flagSet(e, cmd, "ID|KEY")
	m, id, done, err := openForKey(ctx, e, fs, db, args, noDigests)
	if err != nil {
		return err
	}
	defer done()
	change, past := m.Suspend, "suspended"
	if cmd == "resume" {
		change, past = m.Resume, "resumed"
	}
	if err := change(ctx, id); err != nil {
		return notFoundHint(explain(err), id)
	}
	k, err := m.Get(ctx, id)
	if err != nil {
		return explain(err)
	}
	if *asJSON {
		return printKey(e, k, true)
	}
	fmt.Fprintf(e.stdout, "%s %s (owner %s): %s\n", past, k.ID, k.Owner, status(k, time.Now()))
	return nil
}
