package webhook_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
	"github.com/apikeykit/apikey/webhook"
)

// Send a Manager's key lifecycle events to a receiver, signed as
// Standard Webhooks says. The receiver keeps secret.Reveal() ("whsec_…")
// and verifies with any Standard Webhooks library.
func Example() {
	secret, err := webhook.NewSecret()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(secret) // redacted; secret.Reveal() is for the receiver
	s, err := webhook.New("https://hooks.example.com/apikey", secret, webhook.WithQueueSize(10_000))
	if err != nil {
		log.Fatal(err)
	}
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_live"),
		apikey.WithPepper("v1", []byte("a pepper of at least 32 random bytes!")),
		apikey.WithKeyEvents(s.Notify), apikey.WithExpiringSweep(14*24*time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	// … on shutdown, deliver what is queued, for at most 10 seconds:
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer s.Close(ctx)
	// Output: whsec_[REDACTED]
}
