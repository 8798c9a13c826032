package apikey

import "time"

// Limit is a token-bucket rate limit: Rate requests per Period on average,
// with bursts of up to Burst requests. The zero Limit means "not set".
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// IsZero reports whether l is the zero Limit (no limit set).
func (l Limit) IsZero() bool { return l == Limit{} }

// Quota is a usage cap: at most Limit units (requests, or credits when a
// request has a cost) per Period. The zero Quota means "not set".
type Quota struct {
	Limit  int64
	Period time.Duration
}

// IsZero reports whether q is the zero Quota (no quota set).
func (q Quota) IsZero() bool { return q == Quota{} }
