// Package apikey issues, stores and verifies API keys for Go services, and
// protects net/http handlers with them.
//
// A key says who is calling (its Owner), what they may do (its Scopes) and
// whose limits and quota to charge (its RateLimit and Quota). The package
// holds the domain: the token format, the Key record, the Store interface,
// the Manager that ties them together, scopes and scope queries, the types
// of rate limits and quotas, and the HTTP middleware. Storage and shared
// limits are backends in subpackages (see Backends).
//
// # Token format
//
// A key is a bearer token of the form prefix_kid_secretcrc, for example
//
//	acme_live_4fKq9ZmT2xPa_Yb3...Q9w2kXz1
//
// The prefix (see ValidatePrefix) names the vendor and the environment and
// lets secret scanners recognise a leaked key. kid is the key's public ID,
// IDLen base62 characters, used for lookup, display, logs and revocation.
// The secret is SecretLen base62 characters (256 bits) from crypto/rand.
// crc is the CRC-32 (IEEE) of everything before it, as ChecksumLen base62
// digits, so that a scanner or a server rejects a mistyped or random string
// offline. Parse reads a token from the right with fixed widths, so a
// prefix may contain '_'; it does no I/O and does not allocate. Generate
// makes a new one. A whole key travels as a Secret, which prints, logs and
// marshals redacted; only Reveal shows it.
//
// # The Manager
//
// NewManager returns a Manager over a Store. It needs a prefix (WithPrefix)
// and a pepper (WithPepper): a Store holds only HMAC-SHA256(pepper, kid and
// secret), never a key, so a copy of the database lets nobody confirm or
// mint keys. Issue returns a new key once, as a Secret; Rotate replaces a
// key and lets the old one live for a grace period; Revoke ends a key at
// once. Verify checks a token: Parse, then the record by kid from an
// in-process cache or the Store, a constant-time comparison of digests (an
// unknown kid takes the same path against a dummy digest), then revocation,
// expiry and NotBefore. On a cache hit it does no I/O and no allocation.
// Verify does not depend on HTTP; gRPC interceptors and queue consumers
// call it too.
//
// # The HTTP request path
//
// Manager.Middleware wraps a handler. For each request it:
//
//  1. refuses a client that Limits.FailedAuth has blocked (429);
//  2. finds exactly one credential: "Authorization: Bearer", the
//     X-API-Key header (WithHeader), or a query parameter if enabled
//     (WithQueryParam); none is 401, two are 400;
//  3. parses it once, offline: length, shape, checksum and
//     WithAllowedPrefixes (401 invalid_token, before any store call);
//  4. looks the record up in the cache or the Store and compares digests
//     in constant time (401 invalid_token; a Store failure is 503);
//  5. checks the key's status: revoked or expired keys are named as such
//     in the 401, since the caller holds the real key;
//  6. checks the client address against the key's AllowedIPs (403),
//     reading X-Forwarded-For only through WithTrustedProxies;
//  7. counts the request against the key's rate limit, its owner's and
//     its quota (429; a limiter failure is 503 unless Limits.FailOpen),
//     and writes the RateLimit-Policy and RateLimit fields;
//  8. calls the next handler with the key in its context (FromContext).
//
// RequireScopes, RequireAnyScope and Require, placed behind it, check
// scopes (403 insufficient_scope). Every refusal goes to the error handler
// (WriteProblem by default, an RFC 9457 problem document, or
// WithErrorHandler) with Cache-Control: no-store and an RFC 6750 challenge,
// and every decision is reported as an Event to WithOnEvent. No response,
// Event or error holds a key; they name the kid.
//
// # Limits and quotas
//
// A Limit is a token bucket with the semantics of golang.org/x/time/rate;
// a Quota caps units per fixed window. A Limiter applies limits and a
// Counter counts quotas; a refusal is a Decision, an error means no
// decision could be made. The middleware always enforces a key's own
// RateLimit and Quota, in this process's memory by default; WithLimits
// moves them to a shared backend and adds a default limit, a per-owner
// limit and a limit on failed authentications.
//
// # Backends
//
// Store implementations live in subpackages, side by side: memstore (in
// memory, for tests and single processes) and sqlstore (SQLite and
// PostgreSQL, with migrations, revocation pushed to every process, and a
// quota Counter). Optional interfaces (Rotator, LastUsedRecorder, Watcher)
// add atomic rotation, batched last-used times and revocation everywhere
// within a second. Package storetest checks that a Store keeps the
// contract. Limits live in memlimit (in memory) and redislimit (Redis,
// shared by every process). Package envconfig reads peppers and the
// prefix from the environment.
//
// # The client
//
// Transport is an http.RoundTripper that adds a Secret to each request,
// and refuses to send it over plain http except to a loopback host. Scan
// finds keys with this package's format in text, for leak checks.
//
// ARCHITECTURE.md in the repository describes where each concern lives
// and the invariants that the tests guard.
package apikey
