// Package apikeygrpc authenticates gRPC calls with apikey's API keys: server
// interceptors that apply everything apikey.Manager.Middleware applies to
// an HTTP request (verification, IP allowlists, rate limits, quotas,
// events, scope queries), and client credentials that send a key.
//
// On the server, NewInterceptor maps each full method name to the scope
// query its callers' keys must satisfy; methods it does not list are
// refused unless WithPublicMethods names them:
//
//	in, err := apikeygrpc.NewInterceptor(m, map[string]string{
//		"/acme.orders.v1.Orders/Get":    "orders:read",
//		"/acme.orders.v1.Orders/Create": "orders:write",
//	}, apikeygrpc.WithPublicMethods("/grpc.health.v1.Health/Check"))
//	srv := grpc.NewServer(in.ServerOptions()...)
//
// Handlers read the key with apikey.FromContext, as HTTP handlers do.
//
// On the client, Credentials sends a key with every call:
//
//	conn, err := grpc.NewClient(target,
//		grpc.WithTransportCredentials(credentials.NewTLS(nil)),
//		grpc.WithPerRPCCredentials(apikeygrpc.Credentials(secret)))
//
// This package is a module of its own, so that google.golang.org/grpc is
// a dependency only of programs that import it.
package apikeygrpc
