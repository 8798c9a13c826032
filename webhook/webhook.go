// Package webhook sends key lifecycle events (apikey.KeyEvent: a key
// created, rotated, revoked, suspended, leaked, expiring soon or unused)
// to an HTTP endpoint, signed as the Standard Webhooks specification
// says, so that receivers can verify them with any of its libraries.
//
// Each message is a POST of a JSON body
//
//	{"type": "key.revoked", "timestamp": "2026-12-01T12:00:00Z",
//	 "data": {"key": {…the key's apikey.KeyView…}, "source": …, "url": …}}
//
// with the headers webhook-id (the same on every attempt, for the
// receiver to drop duplicates), webhook-timestamp (Unix seconds of the
// attempt) and webhook-signature ("v1," and the base64 HMAC-SHA256, under
// the Secret, of id + "." + timestamp + "." + body). No payload holds a
// key or a digest: only the KeyView.
//
// Wire a Sender to a Manager and to package leaks with its Notify method:
//
//	s, err := webhook.New("https://hooks.example.com/apikey", secret)
//	m, err := apikey.NewManager(store, …, apikey.WithKeyEvents(s.Notify))
//	h, err := leaks.GitHub(m, leaks.WithOnEvent(s.Notify))
//	defer s.Close(ctx)
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/apikeykit/apikey"
)

// Errors of Send.
var (
	// ErrQueueFull reports a message refused because WithQueueSize
	// messages already wait: the receiver is down or slow.
	ErrQueueFull = errors.New("webhook: queue full")
	// ErrClosed reports a message sent after Close.
	ErrClosed = errors.New("webhook: sender closed")
)

// Sender delivers messages to one endpoint, in the background, from a
// bounded queue, one at a time and in order, retrying failed attempts
// with exponential backoff and jitter. It is safe for concurrent use.
// Close it to deliver what is queued and stop.
type Sender struct {
	endpoint string
	secret   Secret
	cfg      config

	queue chan message
	stop  chan struct{} // closed by Close: stop waiting between attempts
	done  chan struct{} // closed when the worker has returned

	mu      sync.RWMutex // guards closed against Send
	closed  bool
	stopped sync.Once
}

// message is one event, encoded, with its ID.
type message struct {
	id, typ, keyID string
	body           []byte
}

// New returns a Sender that signs with secret and posts to endpoint, an
// https (or, for tests, http) URL. It starts one goroutine, which Close
// stops.
func New(endpoint string, secret Secret, opts ...Option) (*Sender, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%w: endpoint %q: want an http or https URL", ErrInvalidOption, endpoint)
	}
	if secret.IsZero() {
		return nil, fmt.Errorf("%w: zero Secret: use NewSecret or ParseSecret", ErrInvalidOption)
	}
	cfg := config{
		queueSize:      DefaultQueueSize,
		attempts:       DefaultAttempts,
		backoff:        DefaultBackoff,
		maxBackoff:     DefaultMaxBackoff,
		attemptTimeout: DefaultAttemptTimeout,
		onError: func(err error) {
			slog.Default().Error("apikey/webhook: delivery failed", "err", err)
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
		cfg.client = &http.Client{}
	}
	s := &Sender{
		endpoint: endpoint, secret: secret, cfg: cfg,
		queue: make(chan message, cfg.queueSize),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go s.run()
	return s, nil
}

// payload is a message's body.
type payload struct {
	Type      apikey.KeyEventType `json:"type"`
	Timestamp time.Time           `json:"timestamp"`
	Data      payloadData         `json:"data"`
}

type payloadData struct {
	Key    apikey.KeyView `json:"key"`
	Source string         `json:"source,omitempty"`
	URL    string         `json:"url,omitempty"`
}

// Send queues ev for delivery and returns at once. It fails with
// ErrQueueFull when the queue is full and ErrClosed after Close; the
// event is then not sent.
func (s *Sender) Send(ev apikey.KeyEvent) error {
	body, err := json.Marshal(payload{Type: ev.Type, Timestamp: ev.At.UTC(), Data: payloadData{Key: ev.Key, Source: ev.Source, URL: ev.URL}})
	if err != nil {
		return fmt.Errorf("webhook: encode %s event: %w", ev.Type, err)
	}
	msg := message{id: newMessageID(), typ: string(ev.Type), keyID: ev.Key.ID, body: body}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	select {
	case s.queue <- msg:
		return nil
	default:
		return fmt.Errorf("%w: %s event for key %s dropped (%d messages waiting)", ErrQueueFull, ev.Type, ev.Key.ID, cap(s.queue))
	}
}

// Notify is Send for hooks that take a func(apikey.KeyEvent), such as
// apikey.WithKeyEvents and leaks.WithOnEvent: a message it cannot queue
// goes to WithBackgroundErrors.
func (s *Sender) Notify(ev apikey.KeyEvent) {
	if err := s.Send(ev); err != nil {
		s.cfg.onError(err)
	}
}

// Len returns how many messages wait for delivery.
func (s *Sender) Len() int { return len(s.queue) }

// Close stops accepting messages, delivers those queued (with their
// retries) until ctx is done, then gives up on the rest, reporting each
// to WithBackgroundErrors, and returns ctx.Err() if it had to. It is safe
// to call more than once.
func (s *Sender) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.queue)
	}
	s.mu.Unlock()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
	}
	s.stopped.Do(func() { close(s.stop) })
	<-s.done
	return ctx.Err()
}

// run delivers queued messages until the queue is closed and empty.
func (s *Sender) run() {
	defer close(s.done)
	for msg := range s.queue {
		if err := s.deliver(msg); err != nil {
			s.cfg.onError(err)
		}
	}
}

// deliver attempts msg until it succeeds, fails for good, runs out of
// attempts or the Sender is stopped.
func (s *Sender) deliver(msg message) error {
	var last error
	wait := s.cfg.backoff
	for attempt := 1; ; attempt++ {
		select {
		case <-s.stop:
			return fmt.Errorf("webhook: message %s (%s, key %s) not delivered: sender closed; last error: %v", msg.id, msg.typ, msg.keyID, last)
		default:
		}
		retry, err := s.attempt(msg)
		if err == nil {
			return nil
		}
		last = err
		if !retry || attempt == s.cfg.attempts {
			return fmt.Errorf("webhook: message %s (%s, key %s) not delivered after %d attempts: %w", msg.id, msg.typ, msg.keyID, attempt, last)
		}
		// Full jitter on the upper half: between wait/2 and wait.
		d := wait/2 + time.Duration(mrand.Int64N(int64(wait/2)+1))
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-s.stop:
			t.Stop()
		}
		wait = min(2*wait, s.cfg.maxBackoff)
	}
}

// attempt posts msg once. It says whether a failure is worth retrying:
// network errors, timeouts, 408, 429 and 5xx are; other statuses are the
// receiver's answer.
func (s *Sender) attempt(msg message) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(msg.body))
	if err != nil {
		return false, err
	}
	ts := strconv.FormatInt(s.cfg.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", msg.id)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", "v1,"+sign(s.secret, msg.id, ts, msg.body))
	resp, err := s.cfg.client.Do(req)
	if err != nil {
		return true, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, nil
	case c == http.StatusRequestTimeout, c == http.StatusTooManyRequests, c >= 500:
		return true, fmt.Errorf("status %s", resp.Status)
	default:
		return false, fmt.Errorf("status %s", resp.Status)
	}
}

// sign returns the base64 HMAC-SHA256 of id.timestamp.body under secret.
func sign(secret Secret, id, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret.bytes())
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// newMessageID returns "msg_" and 16 random bytes in hex.
func newMessageID() string {
	var b [16]byte
	rand.Read(b[:])
	return "msg_" + hex.EncodeToString(b[:])
}
