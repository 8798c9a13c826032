package apikeygrpc

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/apikeykit/apikey"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Interceptor authenticates gRPC calls with API keys. Its Unary and Stream
// interceptors verify the key a call carries, check its IP allowlist, rate
// limits and quota, and report an Event exactly as Manager.Middleware does
// for an HTTP request, since they run that middleware: each call becomes a
// minimal *http.Request for it (see NewInterceptor), and the gRPC handler
// runs as the middleware's next handler, with the key in its context
// (apikey.FromContext).
//
// An Interceptor is immutable and safe for concurrent use.
type Interceptor struct {
	methods   map[string]http.Handler // full method name → middleware chain
	public    map[string]bool
	onEvent   func(apikey.Event)                       // for unlisted methods; nil for none
	onRefusal func(context.Context, *apikey.AuthError) // the same
	mdKey     string                                   // metadata key of the API key header ("x-api-key"); "" for none
	headerKey string                                   // the same, as the canonical header the middleware reads
}

// NewInterceptor returns an Interceptor that authenticates calls with m's
// keys. scopes maps every full method name ("/acme.orders.v1.Orders/Get")
// to the scope query its key must satisfy ("orders:read"; see
// apikey.ParseQuery), or to "" for a method any valid key may call. A
// method that is neither in scopes nor named by WithPublicMethods is
// refused with PermissionDenied before any key is read, so that a method
// added to a service is closed until someone decides who may call it;
// WithOnEvent and WithOnRefusal hear of it with ReasonUnlistedMethod.
//
// A call's key is read from its "authorization: Bearer <key>" or
// "x-api-key: <key>" metadata (see WithHeader), with the rules of
// Manager.Middleware: exactly one credential, or the call is refused.
// The client address comes from the connection (peer.FromContext); no
// other metadata is read, so no client can claim an address or anything
// else. Refusals are gRPC statuses:
//
//   - Unauthenticated: no key, an invalid, revoked, expired or suspended
//     key, two credentials, a malformed Authorization value;
//   - PermissionDenied: a scope the key lacks, a client address its IP
//     allowlist refuses, a method not in scopes;
//   - ResourceExhausted: a rate limit, quota or failed-authentication
//     limit, with an errdetails.RetryInfo in the status details;
//   - Unavailable: the Store, Limiter or Counter failed (the call fails
//     closed), with an errdetails.RetryInfo.
//
// The status message is the refusal's apikey.AuthError.Description (with
// the missing scopes for PermissionDenied): it never holds a key. Refusals
// also carry the trailers "www-authenticate", "retry-after", "ratelimit"
// and "ratelimit-policy" where the HTTP middleware sets those headers, and
// a call let through under a rate limit or quota gets "ratelimit" and
// "ratelimit-policy" in its header metadata.
//
// A stream is authenticated, limited and charged once, when it opens, and
// reported once, when its handler returns.
//
// NewInterceptor returns an error wrapping apikey.ErrInvalidRequest or
// apikey.ErrInvalidQuery for a method name or query that is not valid, or
// an option the middleware refuses.
func NewInterceptor(m *apikey.Manager, scopes map[string]string, opts ...Option) (*Interceptor, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: apikeygrpc: nil Manager", apikey.ErrInvalidRequest)
	}
	var o options
	o.header = apikey.DefaultHeader
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: apikeygrpc: nil option", apikey.ErrInvalidRequest)
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	in := &Interceptor{methods: make(map[string]http.Handler, len(scopes)), public: make(map[string]bool, len(o.public)),
		onEvent: o.onEvent, onRefusal: o.onRefusal}
	if o.header != "" {
		in.mdKey = strings.ToLower(o.header)
		in.headerKey = textproto.CanonicalMIMEHeaderKey(o.header)
	}
	for _, name := range o.public {
		if err := checkMethod(name); err != nil {
			return nil, err
		}
		in.public[name] = true
	}

	mwOpts := append(o.middleware[:len(o.middleware):len(o.middleware)],
		apikey.WithHeader(o.header), apikey.WithErrorHandler(captureRefusal(o.onRefusal)))
	if o.onEvent != nil {
		mwOpts = append(mwOpts, apikey.WithOnEvent(o.onEvent))
	}
	auth, err := middleware(m, mwOpts)
	if err != nil {
		return nil, err
	}
	for name, text := range scopes {
		if err := checkMethod(name); err != nil {
			return nil, err
		}
		if in.public[name] {
			return nil, fmt.Errorf("%w: apikeygrpc: %s is both public and in the scopes map", apikey.ErrInvalidRequest, name)
		}
		h := http.Handler(runCall{})
		if text != "" {
			q, err := apikey.ParseQuery(text)
			if err != nil {
				return nil, fmt.Errorf("apikeygrpc: scopes of %s: %w", name, err)
			}
			h = apikey.Require(q)(h)
		}
		in.methods[name] = auth(h)
	}
	return in, nil
}

// middleware builds m's middleware, turning its panic on a bad option into
// an error.
func middleware(m *apikey.Manager, opts []apikey.MiddlewareOption) (mw func(http.Handler) http.Handler, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: apikeygrpc: %v", apikey.ErrInvalidRequest, v)
		}
	}()
	return m.Middleware(opts...), nil
}

// checkMethod reports whether name is a full gRPC method name,
// "/package.Service/Method".
func checkMethod(name string) error {
	service, method, ok := strings.Cut(strings.TrimPrefix(name, "/"), "/")
	if !strings.HasPrefix(name, "/") || !ok || service == "" || method == "" || strings.Contains(method, "/") {
		return fmt.Errorf("%w: apikeygrpc: %q is not a full method name (/package.Service/Method)", apikey.ErrInvalidRequest, name)
	}
	return nil
}

// Unary returns the interceptor for unary calls.
func (in *Interceptor) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if in.public[info.FullMethod] {
			return handler(ctx, req)
		}
		c := &call{run: func(ctx context.Context, c *call) {
			if len(c.header) > 0 {
				grpc.SetHeader(ctx, responseMetadata(c.header))
			}
			c.resp, c.err = handler(ctx, req)
		}}
		if err := in.serve(ctx, info.FullMethod, c); err != nil {
			if md := refusalMetadata(c.header); len(md) > 0 {
				grpc.SetTrailer(ctx, md)
			}
			return nil, err
		}
		return c.resp, c.err
	}
}

// Stream returns the interceptor for streaming calls. The handler's
// ServerStream reports the context with the key (apikey.FromContext on
// stream.Context()).
func (in *Interceptor) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if in.public[info.FullMethod] {
			return handler(srv, ss)
		}
		c := &call{run: func(ctx context.Context, c *call) {
			if len(c.header) > 0 {
				ss.SetHeader(responseMetadata(c.header))
			}
			c.err = handler(srv, &serverStream{ServerStream: ss, ctx: ctx})
		}}
		if err := in.serve(ss.Context(), info.FullMethod, c); err != nil {
			if md := refusalMetadata(c.header); len(md) > 0 {
				ss.SetTrailer(md)
			}
			return err
		}
		return c.err
	}
}

// ServerOptions returns the options that install both interceptors, for
// grpc.NewServer. They chain after interceptors installed before them.
func (in *Interceptor) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(in.Unary()), grpc.ChainStreamInterceptor(in.Stream())}
}

// serve runs the method's middleware chain for the call: it returns the
// refusal's status error, or nil once the chain ran the handler.
func (in *Interceptor) serve(ctx context.Context, method string, c *call) error {
	h, ok := in.methods[method]
	if !ok {
		in.refuseUnlisted(ctx, method)
		return status.Error(codes.PermissionDenied, descUnlisted)
	}
	h.ServeHTTP(c, in.request(ctx, method))
	switch {
	case c.refusal != nil:
		return refusalStatus(c.refusal).Err()
	case !c.served:
		// Neither a refusal nor the handler: nothing the middleware does,
		// but were it to happen the call must fail, not succeed.
		return status.Error(codes.Internal, "apikey: the call was neither authenticated nor refused")
	}
	return nil
}

// refuseUnlisted reports the refusal of a call to a method in neither the
// scopes map nor the public methods, to WithOnRefusal and WithOnEvent. No
// credential is read: the Event holds no key ID.
func (in *Interceptor) refuseUnlisted(ctx context.Context, method string) {
	if in.onRefusal == nil && in.onEvent == nil {
		return
	}
	start := time.Now()
	e := &apikey.AuthError{Status: http.StatusForbidden, Reason: ReasonUnlistedMethod, Description: descUnlisted}
	if in.onRefusal != nil {
		in.onRefusal(ctx, e)
	}
	if in.onEvent != nil {
		ev := apikey.Event{Outcome: apikey.OutcomeForbidden, Reason: ReasonUnlistedMethod, Status: http.StatusForbidden,
			Method: http.MethodPost, Path: method}
		if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
			if ap, err := netip.ParseAddrPort(p.Addr.String()); err == nil {
				ev.ClientIP = ap.Addr().Unmap().WithZone("")
			}
		}
		ev.Duration = time.Since(start)
		in.onEvent(ev)
	}
}

// request is the HTTP request the middleware sees for a call: POST to the
// full method name, with only the credential metadata as headers and the
// connection's peer as RemoteAddr.
func (in *Interceptor) request(ctx context.Context, method string) *http.Request {
	h := make(http.Header, 2)
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md["authorization"]; len(v) > 0 {
			h["Authorization"] = v
		}
		if in.mdKey != "" {
			if v := md[in.mdKey]; len(v) > 0 {
				h[in.headerKey] = v
			}
		}
	}
	r := &http.Request{
		Method:     http.MethodPost,
		URL:        &url.URL{Path: method},
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     h,
		RequestURI: method,
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		r.RemoteAddr = p.Addr.String()
	}
	return r.WithContext(ctx)
}

// call is one call's state: the middleware writes its response headers
// and refusal to it, as to an http.ResponseWriter, and runCall runs the
// gRPC handler through it.
type call struct {
	header  http.Header
	refusal *apikey.AuthError
	served  bool
	run     func(ctx context.Context, c *call)
	resp    any
	err     error
}

func (c *call) Header() http.Header {
	if c.header == nil {
		c.header = make(http.Header, 4)
	}
	return c.header
}

func (c *call) Write(b []byte) (int, error) { return len(b), nil }
func (c *call) WriteHeader(int)             {}

// captureRefusal returns the middleware's error handler: it keeps the
// refusal for the interceptor to answer with, after telling onRefusal, if
// set.
func captureRefusal(onRefusal func(context.Context, *apikey.AuthError)) func(http.ResponseWriter, *http.Request, *apikey.AuthError) {
	return func(w http.ResponseWriter, r *http.Request, e *apikey.AuthError) {
		if onRefusal != nil {
			onRefusal(r.Context(), e)
		}
		if c, ok := w.(*call); ok {
			c.refusal = e
		}
	}
}

// runCall is the middleware's next handler: the gRPC handler, with the
// request's context, which holds the key.
type runCall struct{}

func (runCall) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, ok := w.(*call)
	if !ok {
		return
	}
	c.served = true
	c.run(r.Context(), c)
}

// serverStream is a ServerStream whose context holds the key.
type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *serverStream) Context() context.Context { return s.ctx }
