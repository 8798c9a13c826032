// Package leaks receives the leak reports of secret scanning platforms,
// GitHub's secret scanning partner program and GitLab's, and revokes the
// keys they found in public code within seconds.
//
// A platform that finds a string matching a registered key format (see
// the apikey patterns command) POSTs it, with others, to the issuer's
// endpoint, signed with ECDSA P-256 over SHA-256. The handlers GitHub and
// GitLab return check that signature against the platform's published
// keys, look each token up through the Manager, and for each real,
// current key of that Manager revoke it (the default), suspend it, or
// only report it, with a KeyLeaked event. The answer labels every token
// true_positive or false_positive and names it by its SHA-256, never by
// itself:
//
//	h, err := leaks.GitHub(m, leaks.WithOnEvent(notifyOwner))
//	...
//	mux.Handle("POST /leaks/github", h)
//
// Mount the handler without the Manager's middleware: the platforms
// authenticate with their signatures, not with an API key.
package leaks

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/apikeykit/apikey"
)

// GitHub returns a handler for GitHub's secret scanning partner reports:
// signed in the Github-Public-Key-Identifier and
// Github-Public-Key-Signature headers, with keys from GitHubKeysURL unless
// WithKeysURL says otherwise.
//
// The handler answers 405 to anything but POST; 413 to a body larger than
// WithMaxBodySize or a batch larger than WithMaxBatch; 401 to a missing,
// malformed or wrong signature, or one by a key the key document does not
// hold; 400 to a body that is not a JSON array of reports; 503 when the
// key document cannot be fetched or the Store fails (the platform
// retries); and otherwise 200 with a JSON array of
// {"token_hash", "token_type", "label"}, one per reported token, in order.
// Only the 200 changes anything. A token is a true_positive when it is a
// real, current key of m (Manager.Identify accepts it), or one that an
// earlier report already revoked (or, with Suspend, suspended), so that a
// report delivered twice gets the same answer and acts once. A report is
// not a use of the key: its last use stays the holder's.
//
// The handler is safe for concurrent use.
func GitHub(m *apikey.Manager, opts ...Option) (http.Handler, error) {
	return newHandler(m, platform{
		name:       "github",
		idHeader:   "Github-Public-Key-Identifier",
		sigHeader:  "Github-Public-Key-Signature",
		defaultURL: GitHubKeysURL,
	}, opts)
}

// GitLab returns a handler for GitLab's leak reports, which are GitHub's
// with the Gitlab-Public-Key-Identifier and Gitlab-Public-Key-Signature
// headers, keys from keysURL, and a body of [{"type", "token", "url"}].
// keysURL is required: give the address GitLab names when you register.
// It behaves as GitHub's handler does.
func GitLab(m *apikey.Manager, keysURL string, opts ...Option) (http.Handler, error) {
	if keysURL == "" {
		return nil, fmt.Errorf("%w: GitLab needs the URL of GitLab's key document", ErrInvalidOption)
	}
	return newHandler(m, platform{
		name:      "gitlab",
		idHeader:  "Gitlab-Public-Key-Identifier",
		sigHeader: "Gitlab-Public-Key-Signature",
	}, append([]Option{WithKeysURL(keysURL)}, opts...))
}

// platform is what tells one platform's reports from another's.
type platform struct {
	name                string
	idHeader, sigHeader string
	defaultURL          string
}

type handler struct {
	m    *apikey.Manager
	p    platform
	cfg  config
	keys *keySet
}

func newHandler(m *apikey.Manager, p platform, opts []Option) (*handler, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOption, errNilManager)
	}
	cfg := config{
		keysURL:      p.defaultURL,
		action:       Revoke,
		maxBody:      DefaultMaxBodySize,
		maxBatch:     DefaultMaxBatch,
		refetch:      DefaultRefetchInterval,
		fetchTimeout: DefaultFetchTimeout,
		concurrency:  DefaultConcurrency,
		onError: func(err error) {
			slog.Default().Error("apikey/leaks: report not handled", "err", err)
		},
		now: time.Now,
	}
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: nil option", ErrInvalidOption)
		}
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.client == nil {
		cfg.client = &http.Client{Timeout: cfg.fetchTimeout}
	}
	return &handler{m: m, p: p, cfg: cfg, keys: &keySet{
		url: cfg.keysURL, client: cfg.client, timeout: cfg.fetchTimeout, refetch: cfg.refetch, now: cfg.now,
	}}, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST a leak report", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.maxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		http.Error(w, fmt.Sprintf("report larger than %d bytes", h.cfg.maxBody), http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		http.Error(w, "could not read the report", http.StatusBadRequest)
		return
	}

	switch err := h.checkSignature(r.Context(), r.Header, body); {
	case errors.Is(err, errKeysUnavailable):
		h.cfg.onError(fmt.Errorf("apikey/leaks: %s report: %w", h.p.name, err))
		w.Header().Set("Retry-After", "60")
		http.Error(w, "signing keys unavailable, retry later", http.StatusServiceUnavailable)
		return
	case err != nil:
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}

	reports, err := parseReport(body, h.cfg.maxBatch)
	switch {
	case errors.Is(err, errBatchTooLarge):
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}

	verdicts, err := h.handle(r.Context(), reports)
	if err != nil {
		h.cfg.onError(fmt.Errorf("apikey/leaks: %s report: %w", h.p.name, err))
		w.Header().Set("Retry-After", "10")
		http.Error(w, "could not check the report, retry later", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(verdicts)
}

// checkSignature checks the report's signature: base64 of an ASN.1 DER
// ECDSA signature over the SHA-256 of the raw body, by the key the
// identifier header names.
func (h *handler) checkSignature(ctx context.Context, header http.Header, body []byte) error {
	id, sig := header.Get(h.p.idHeader), header.Get(h.p.sigHeader)
	if id == "" || sig == "" {
		return errors.New("no signature")
	}
	der, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return errors.New("signature is not base64")
	}
	pub, err := h.keys.key(ctx, id)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	if !ecdsa.VerifyASN1(pub, sum[:], der) {
		return errors.New("signature does not verify")
	}
	return nil
}

// handle looks up every reported token, acts on those that are keys of
// the Manager, and returns the verdicts in the reports' order. A token
// reported twice in one batch is handled once. Any Store failure fails
// the whole report: the platform retries it, and what was already done is
// not done twice.
func (h *handler) handle(ctx context.Context, reports []reportedToken) ([]verdict, error) {
	verdicts := make([]verdict, len(reports))
	first := make(map[string]int, len(reports)) // token → index of its first report
	var unique []int
	for i, rep := range reports {
		verdicts[i] = verdict{TokenHash: tokenHash(rep.Token), TokenType: rep.Type, Label: falsePositive}
		if _, dup := first[rep.Token]; !dup {
			first[rep.Token] = i
			unique = append(unique, i)
		}
	}
	real := make([]bool, len(reports))
	errs := make([]error, len(reports))
	sem := make(chan struct{}, h.cfg.concurrency)
	var wg sync.WaitGroup
	for _, i := range unique {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			real[i], errs[i] = h.handleOne(ctx, reports[i])
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for i, rep := range reports {
		if real[first[rep.Token]] {
			verdicts[i].Label = truePositive
		}
	}
	return verdicts, nil
}

// handleOne acts on one reported token and says whether it is a real key
// of the Manager that is, or that a report made, out of use.
func (h *handler) handleOne(ctx context.Context, rep reportedToken) (bool, error) {
	k, err := h.m.Identify(ctx, rep.Token)
	switch {
	case err == nil:
		return true, h.act(ctx, k, rep)
	case errors.Is(err, apikey.ErrRevoked), errors.Is(err, apikey.ErrSuspended):
		// The secret matched (Verify checks status only after the
		// digest): a real key, out of use. Was it a report that did it?
		stored, err := h.m.Get(ctx, tokenID(rep.Token))
		if err != nil {
			return false, fmt.Errorf("get reported key: %w", err)
		}
		switch {
		case !stored.RevokedAt.IsZero():
			return isLeakReason(stored.RevokedReason), nil
		case h.cfg.action == Suspend:
			return true, nil
		}
		return false, nil
	case errors.Is(err, apikey.ErrUnavailable), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false, err
	}
	return false, nil // not a key, not ours, wrong secret, expired, not yet valid
}

// tokenID returns the key ID of a token that Verify has accepted as far
// as its digest.
func tokenID(token string) string {
	t, err := apikey.Parse(token)
	if err != nil {
		return ""
	}
	return t.ID
}

// act takes the configured action on key k and reports it.
func (h *handler) act(ctx context.Context, k *apikey.Key, rep reportedToken) error {
	var err error
	switch h.cfg.action {
	case Revoke:
		err = h.m.RevokeWithReason(ctx, k.ID, leakReason(rep.URL))
	case Suspend:
		err = h.m.Suspend(ctx, k.ID)
	}
	if err != nil {
		return fmt.Errorf("%v key %s: %w", h.cfg.action, k.ID, err)
	}
	if h.cfg.onEvent == nil {
		return nil
	}
	after := k
	if h.cfg.action != ReportOnly {
		if after, err = h.m.Get(ctx, k.ID); err != nil {
			after = k // the action is done; report what is known
		}
	}
	now := h.cfg.now()
	source := h.p.name
	h.cfg.onEvent(apikey.KeyEvent{Type: apikey.KeyLeaked, At: now, Key: after.View(now), Source: source, URL: rep.URL})
	return nil
}
