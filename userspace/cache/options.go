package cache

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"time"

	"github.com/pgproxy/pgproxy/userspace/analysis"
)

// Defaults of Options.
const (
	DefaultMemorySize        = 10_000
	DefaultTTL               = time.Hour
	DefaultOpTimeout         = 25 * time.Millisecond
	DefaultConnectTimeout    = 2 * time.Second
	DefaultAdminTimeout      = 5 * time.Second
	DefaultBreakerFailures   = 3
	DefaultBreakerBackoff    = time.Second
	DefaultBreakerMaxBackoff = 10 * time.Second
	DefaultWriteQueue        = 1024
	DefaultWriteWorkers      = 2
)

// Options configure a Tiered cache. The zero value is a memory-only cache with the defaults.
type Options struct {
	// MemorySize is how many decisions the memory tier holds (default DefaultMemorySize).
	MemorySize int
	// TTL is how long a decision is kept, in Valkey (the key's expiry) and in memory
	// (default DefaultTTL).
	TTL time.Duration

	// ValkeyURL is redis://[user[:password]@]host[:port][/db] or rediss://… for TLS (valkey://
	// and valkeys:// too); empty: no Valkey tier. The URL's user, password and database
	// number are used; the query options of valkey-go's ParseURL are accepted.
	ValkeyURL string
	// TLSConfig is the base TLS configuration for a rediss:// URL (for example RootCAs for a
	// private CA); it is cloned, and its ServerName defaults to the URL's host. Nil: the
	// system roots. It is an error with a redis:// URL.
	TLSConfig *tls.Config
	// TLSSkipVerify turns off verification of the server's certificate
	// (VALKEY_TLS_SKIP_VERIFY). It is an error with a redis:// URL.
	TLSSkipVerify bool
	// Credentials, when set, is asked for the AUTH user name and password each time a
	// connection is made (a rotating IAM token, for example); it replaces the URL's. The
	// context ends after ConnectTimeout.
	Credentials func(ctx context.Context) (Credentials, error)
	// ConnLifetime, when set, closes and remakes each connection after this long
	// (ElastiCache ends IAM connections after 12 hours).
	ConnLifetime time.Duration

	// OpTimeout bounds each Valkey read and write (default DefaultOpTimeout). A read that
	// runs out is a miss.
	OpTimeout time.Duration
	// ConnectTimeout bounds a background connection attempt, a probe and the subscription
	// (default DefaultConnectTimeout).
	ConnectTimeout time.Duration
	// AdminTimeout bounds Delete, PurgeDatabase and Purge when their context has no earlier
	// deadline (default DefaultAdminTimeout).
	AdminTimeout time.Duration
	// BreakerFailures consecutive failed operations make Valkey unavailable (default
	// DefaultBreakerFailures).
	BreakerFailures int
	// BreakerBackoff is the first pause before Valkey is probed again; it doubles after each
	// failed probe, and after each opening within BreakerMaxBackoff of the last recovery, up
	// to BreakerMaxBackoff (defaults DefaultBreakerBackoff, DefaultBreakerMaxBackoff). The
	// same pauses space out connection attempts. A probe passes when a PING comes back
	// within OpTimeout.
	BreakerBackoff, BreakerMaxBackoff time.Duration
	// WriteQueue is how many Valkey writes may wait (default DefaultWriteQueue); more are
	// dropped. WriteWorkers goroutines send them (default DefaultWriteWorkers).
	WriteQueue, WriteWorkers int

	// Hooks are called on lookups, errors and availability changes.
	Hooks Hooks
}

// Credentials are a Valkey AUTH user name (empty: "default") and password.
type Credentials struct {
	Username, Password string
	// RefreshAfter, when set, is when live connections send AUTH again with new
	// credentials (an IAM token before it expires).
	RefreshAfter time.Time
}

// Hooks let the daemon count and log what the cache does. Each hook may be nil; hooks are
// called synchronously from query goroutines and background goroutines at once, so they must
// be quick and safe for concurrent use.
type Hooks struct {
	// OnLookup is called once per tier asked by Get: tier is analysis.SourceMemory or
	// analysis.SourceValkey. A Valkey read that failed, ran out of time or found a
	// malformed value is a miss (and OnError is called too); a skipped one (Valkey
	// unavailable) is not a lookup.
	OnLookup func(tier analysis.Source, hit bool)
	// OnError is called when a Valkey operation failed or was skipped. op is one of "get",
	// "set", "delete", "purge", "publish", "connect" (a connection attempt or a probe),
	// "subscribe" and "invalidate" (a message on the channel that is not understood).
	// ErrorKind(err) gives a bounded label.
	OnError func(op string, err error)
	// OnAvailable is called when Valkey becomes available (connected, or a probe after
	// failures succeeded) or unavailable (the breaker opened).
	OnAvailable func(available bool)
	// OnInvalidate is called when this process drops decisions from memory because of a
	// message on InvalidationChannel or a renewed subscription: scope is "key", "database",
	// "all" or "resubscribe".
	OnInvalidate func(scope string)
}

// Errors given to Hooks.OnError and returned by Delete, PurgeDatabase and Purge.
var (
	// ErrUnavailable: Valkey was skipped (not connected yet, or the breaker is open).
	ErrUnavailable = errors.New("cache: valkey unavailable")
	// ErrQueueFull: the Valkey write queue was full and the write was dropped.
	ErrQueueFull = errors.New("cache: valkey write queue full")
	// ErrMalformed: a Valkey value is not a decision (it is treated as a miss and deleted),
	// or an invalidation message is not understood.
	ErrMalformed = errors.New("cache: malformed value")
	// ErrClosed: the cache was closed.
	ErrClosed = errors.New("cache: closed")
)

// ErrorKind returns a bounded label for an error given to Hooks.OnError, for metrics:
// "timeout", "unavailable", "queue_full", "malformed", "closed" or "error".
func ErrorKind(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	case errors.Is(err, ErrQueueFull):
		return "queue_full"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	case errors.Is(err, ErrClosed):
		return "closed"
	default:
		return "error"
	}
}

// withDefaults returns o with every zero setting replaced by its default.
func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MemorySize, DefaultMemorySize)
	def(&o.BreakerFailures, DefaultBreakerFailures)
	def(&o.WriteQueue, DefaultWriteQueue)
	def(&o.WriteWorkers, DefaultWriteWorkers)
	defD(&o.TTL, DefaultTTL)
	defD(&o.OpTimeout, DefaultOpTimeout)
	defD(&o.ConnectTimeout, DefaultConnectTimeout)
	defD(&o.AdminTimeout, DefaultAdminTimeout)
	defD(&o.BreakerBackoff, DefaultBreakerBackoff)
	defD(&o.BreakerMaxBackoff, DefaultBreakerMaxBackoff)
	o.BreakerMaxBackoff = max(o.BreakerMaxBackoff, o.BreakerBackoff)
	return o
}

func (h *Hooks) lookup(tier analysis.Source, hit bool) {
	if h.OnLookup != nil {
		h.OnLookup(tier, hit)
	}
}

func (h *Hooks) error(op string, err error) {
	if h.OnError != nil {
		h.OnError(op, err)
	}
}

func (h *Hooks) available(up bool) {
	if h.OnAvailable != nil {
		h.OnAvailable(up)
	}
}

func (h *Hooks) invalidate(scope string) {
	if h.OnInvalidate != nil {
		h.OnInvalidate(scope)
	}
}
