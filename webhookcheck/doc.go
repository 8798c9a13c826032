// Package webhookcheck holds only a test: package webhook's messages,
// received by a real HTTP server, verified by the Standard Webhooks
// reference library for Go, used as the oracle. It is a module of its own
// so that the library's go.mod never requires the reference library.
package webhookcheck
