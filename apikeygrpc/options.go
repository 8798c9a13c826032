package apikeygrpc

import (
	"context"
	"fmt"

	"github.com/apikeykit/apikey"
)

// An Option configures NewInterceptor.
type Option func(*options) error

type options struct {
	public     []string
	middleware []apikey.MiddlewareOption
	header     string
	onRefusal  func(ctx context.Context, e *apikey.AuthError)
	onEvent    func(apikey.Event)
}

// WithPublicMethods lets calls to the named full methods through without
// a key, and without reading any credential they carry: health checks,
// reflection. Their handlers see no key (apikey.FromContext reports
// false), and no Event is reported for them. A public method may not also
// be in the scopes map.
func WithPublicMethods(methods ...string) Option {
	return func(o *options) error {
		for _, m := range methods {
			if err := checkMethod(m); err != nil {
				return err
			}
		}
		o.public = append(o.public, methods...)
		return nil
	}
}

// WithMiddlewareOptions configures the apikey.Middleware the interceptor
// runs: apikey.WithLimits, apikey.WithAllowedPrefixes, apikey.WithAnonymous
// and the like apply to calls as to HTTP requests. apikey.WithOnEvent does
// too, but sees only what the middleware decides: use WithOnEvent, which
// also reports calls to unlisted methods.
// The interceptor sets the error handler and the header itself, so
// apikey.WithErrorHandler and apikey.WithHeader are overridden (use
// WithHeader); cookies, query parameters, CORS and proxies do not exist
// in gRPC, and options about them change nothing.
func WithMiddlewareOptions(opts ...apikey.MiddlewareOption) Option {
	return func(o *options) error {
		for _, opt := range opts {
			if opt == nil {
				return fmt.Errorf("%w: apikeygrpc: WithMiddlewareOptions: nil option", apikey.ErrInvalidRequest)
			}
		}
		o.middleware = append(o.middleware, opts...)
		return nil
	}
}

// WithHeader sets the metadata key that carries a key as its whole value,
// besides "authorization: Bearer" (default "x-api-key", the lower-case
// form of apikey.DefaultHeader); "" accepts keys only in "authorization".
// The name must be usable as an HTTP header name, as apikey.WithHeader
// says.
func WithHeader(name string) Option {
	return func(o *options) error {
		o.header = name
		return nil
	}
}

// WithOnRefusal calls fn with the call's context and the refusal, before
// the interceptor answers with its status, for what needs the context: a
// span, as apikeyotel.AnnotateRefusal annotates it. Refusals by scope are
// included, and so are calls to methods in neither the scopes map nor
// WithPublicMethods, with Reason ReasonUnlistedMethod and Status 403. fn
// must be fast and safe for concurrent use; e never holds a key.
func WithOnRefusal(fn func(ctx context.Context, e *apikey.AuthError)) Option {
	return func(o *options) error {
		if fn == nil {
			return fmt.Errorf("%w: apikeygrpc: WithOnRefusal(nil)", apikey.ErrInvalidRequest)
		}
		o.onRefusal = fn
		return nil
	}
}

// WithOnEvent calls fn with one apikey.Event for every call the
// interceptor decides on: it passes apikey.WithOnEvent(fn) to the
// middleware (replacing one given with WithMiddlewareOptions), and also
// reports the calls to methods in neither the scopes map nor
// WithPublicMethods, which the middleware never sees, with Outcome
// apikey.OutcomeForbidden, Reason ReasonUnlistedMethod, Status 403, Method
// "POST" and Path the full method name. Calls to public methods are not
// reported. fn must be fast and safe for concurrent use; an Event never
// holds a key.
func WithOnEvent(fn func(apikey.Event)) Option {
	return func(o *options) error {
		if fn == nil {
			return fmt.Errorf("%w: apikeygrpc: WithOnEvent(nil)", apikey.ErrInvalidRequest)
		}
		o.onEvent = fn
		return nil
	}
}
