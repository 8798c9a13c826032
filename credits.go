package apikey

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Credits is a prepaid balance that requests draw down by their cost (see
// Limits.Cost), on a key (Key.Credits) or on an owner
// (Limits.PerOwnerCredits). The zero Credits means "not set".
//
// A balance has two parts. The grant is Grant units per refill period,
// which a request uses first and which does not carry over: each refill
// sets it back to Grant. Top-ups (Ledger.TopUp) are units bought or given
// on top, which do not expire; a request uses them once the period's grant
// is spent. The balance is what is left of both, never below zero: a
// request that costs more than the balance is refused and takes nothing.
//
// Period says when the grant is refilled, in the windows of a Quota with
// the same Period and Day: Period 24h refills at 00:00 UTC daily,
// MonthPeriod at 00:00 UTC on day Day of each month (the 1st when Day is
// 0, a short month's last day for a day past its end). NoRefill grants
// Grant once, for the life of the balance; with Grant 0 the balance is
// top-ups only.
//
// Its text form, read by ParseCredits and written by String, is "GRANT"
// for NoRefill ("0" for top-ups only, "5000" for a one-off grant), or
// "GRANT/PERIOD" as for a Quota: "1000/d", "100000/month",
// "100000/month@15".
type Credits struct {
	Grant  int64         // units per refill, or once for NoRefill; 0 to MaxCredits
	Period time.Duration // ≥ 1ns, MonthPeriod or NoRefill
	Day    int           // with MonthPeriod, 1–31, the day of the refill; 0 means 1
}

// NoRefill is the Period of Credits whose grant is never refilled.
const NoRefill time.Duration = -2

// MaxCredits is the largest balance a Ledger holds: 2^53 units, so that
// every balance is exact in a float64, as the Redis Ledger's Lua numbers
// are. A grant above it is invalid, and a top-up that would take a
// balance past it fails with ErrInvalidRequest.
const MaxCredits int64 = 1 << 53

// IsZero reports whether c is the zero Credits (no credits set).
func (c Credits) IsZero() bool { return c == Credits{} }

// Validate reports whether a Ledger can apply c. It returns an error
// wrapping ErrInvalidRequest if c is zero, its Grant is negative or above
// MaxCredits, its Period is not positive, MonthPeriod or NoRefill, or its
// Day is not 0 to 31 (or not 0 for a Period other than MonthPeriod).
// Every Ledger should refuse what Validate refuses.
func (c Credits) Validate() error {
	switch {
	case c.IsZero():
		return fmt.Errorf("%w: zero credits", ErrInvalidRequest)
	case c.Grant < 0 || c.Grant > MaxCredits:
		return fmt.Errorf("%w: credits grant %d: want 0 to %d", ErrInvalidRequest, c.Grant, MaxCredits)
	case c.Period <= 0 && c.Period != MonthPeriod && c.Period != NoRefill:
		return fmt.Errorf("%w: credits %d per %v: want a positive refill period, MonthPeriod or NoRefill", ErrInvalidRequest, c.Grant, c.Period)
	case c.Day != 0 && c.Period != MonthPeriod:
		return fmt.Errorf("%w: credits %d per %v: a day of the month is only for monthly refills", ErrInvalidRequest, c.Grant, c.Period)
	case c.Day < 0 || c.Day > 31:
		return fmt.Errorf("%w: credits %d per month: day %d of the month, want 1 to 31", ErrInvalidRequest, c.Grant, c.Day)
	}
	return nil
}

// Window returns the refill period of c that holds t: [start, end), in
// UTC, the window of a Quota with c's Period and Day. For NoRefill there is
// one window for all time: start is the Unix epoch and end the zero Time.
// It is for Ledgers on other backends, which must refill at the same
// moments. Its result is meaningless for a c that Validate refuses.
func (c Credits) Window(t time.Time) (start, end time.Time) {
	if c.Period == NoRefill {
		return time.Unix(0, 0).UTC(), time.Time{}
	}
	return Quota{Limit: max(c.Grant, 1), Period: c.Period, Day: c.Day}.Window(t)
}

// String returns c in the form ParseCredits reads: Credits{1000,
// 24 * time.Hour, 0} is "1000/d", Credits{0, NoRefill, 0} is "0". The zero
// Credits is "0/0s", which does not parse.
func (c Credits) String() string {
	if c.Period == NoRefill {
		return strconv.FormatInt(c.Grant, 10)
	}
	q := Quota{Limit: c.Grant, Period: c.Period, Day: c.Day}
	return q.String()
}

// ParseCredits parses credits written "GRANT" (never refilled: "0" is a
// balance of top-ups only) or "GRANT/PERIOD", with PERIOD as for
// ParseQuota: "1000/d", "100000/month", "100000/month@15". GRANT is a
// decimal integer from 0 to MaxCredits. Errors wrap ErrInvalidRequest and
// say where the text went wrong.
func ParseCredits(s string) (Credits, error) {
	num, _, hasPeriod := strings.Cut(s, "/")
	grant, err := parseGrant(s, num)
	if err != nil {
		return Credits{}, err
	}
	if !hasPeriod {
		return Credits{Grant: grant, Period: NoRefill}, nil
	}
	// The period parses as a quota's, whose count must be at least 1:
	// parse "1/PERIOD" and keep the grant.
	q, err := ParseQuota("1" + s[len(num):])
	if err != nil {
		return Credits{}, fmt.Errorf("%w: credits %q: %s", ErrInvalidRequest, s, periodReason(err))
	}
	return Credits{Grant: grant, Period: q.Period, Day: q.Day}, nil
}

// parseGrant parses a grant from 0 to MaxCredits.
func parseGrant(s, num string) (int64, error) {
	if num == "0" {
		return 0, nil
	}
	n, msg := parseCount(num)
	if msg == "" && n > uint64(MaxCredits) {
		msg = fmt.Sprintf("grant above %d", MaxCredits)
	}
	if msg != "" {
		return 0, parseError("credits", s, 0, msg)
	}
	return int64(n), nil
}

// periodReason returns what ParseQuota said was wrong with a period, the
// part of its error after the quoted text (whose offsets are one off).
func periodReason(err error) string {
	msg := err.Error()
	if _, after, ok := strings.Cut(msg, ": at byte "); ok {
		if _, reason, ok := strings.Cut(after, ": "); ok {
			return "period: " + reason
		}
	}
	return msg
}

// A Ledger keeps credit balances by key (a key's lineage, an owner). The
// middleware draws each request's cost from it (see Limits.Ledger);
// services top balances up through it when a customer pays. Every
// balance is decided atomically: under any concurrency, across every
// process that shares the Ledger's backend, a balance never goes below
// zero and no top-up is lost. Implementations must be safe for concurrent
// use. Every method refuses a c that Credits.Validate refuses, a negative
// n, and a key that is not valid UTF-8 or holds a NUL byte, with an error
// wrapping ErrInvalidRequest, and fails with one wrapping ErrUnavailable
// when the backend does not answer; nothing changes on error.
type Ledger interface {
	// Spend takes n units from key's balance under c, the current
	// period's grant first, then top-ups, and reports whether they were
	// there. A refused Spend takes nothing. n = 0 takes nothing and
	// reports the balance. The Decision's Limit is the period's grant plus
	// the top-ups left at its start and bought since (what the period
	// could spend), Remaining the balance after the Spend, Reset the time
	// until the next refill (0 for NoRefill), and, on a refusal,
	// RetryAfter the time until a refill holds n, or 0 if none will (a
	// NoRefill balance, or n above Grant): only a top-up helps then.
	Spend(ctx context.Context, key string, c Credits, n int64) (Decision, error)

	// Refund gives back n units that Spend took for a request refused
	// after all, to the period's grant as far as it was used and the rest
	// to the top-ups. If the period Spend took them in has ended since,
	// they go to the new period's balance.
	Refund(ctx context.Context, key string, c Credits, n int64) error

	// TopUp adds n ≥ 1 units that do not expire to key's balance and
	// returns the new balance. A top-up that would take the balance past
	// MaxCredits fails with an error wrapping ErrInvalidRequest and adds
	// nothing.
	TopUp(ctx context.Context, key string, c Credits, n int64) (balance int64, err error)
}

// CreditsKey is the Ledger key of k's own credits (Key.Credits):
// "credits:" + k.LineageID(). A key made by Manager.Rotate shares its
// predecessor's balance: rotation neither refills nor loses it.
func CreditsKey(k *Key) string { return "credits:" + k.LineageID() }

// OwnerCreditsKey is the Ledger key of Limits.PerOwnerCredits for owner.
// It cannot collide with a CreditsKey: its prefix differs. It is
// "owner-credits:" + owner.
func OwnerCreditsKey(owner string) string { return "owner-credits:" + owner }
