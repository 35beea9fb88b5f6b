package cache

import (
	"context"
	"crypto/x509"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/userspace/analysis"
)

// roundTrip checks that c writes to Valkey and that a second cache with o reads it back.
func roundTrip(t *testing.T, c *Tiered, o Options) {
	t.Helper()
	ctx := context.Background()
	waitReady(t, c)
	fp := strings.ReplaceAll(t.Name(), "/", "-")
	c.Set(ctx, "shop", fp, decision("x"))
	flush(t, c)
	other := open(t, o, nil)
	waitReady(t, other)
	if _, src, ok := other.Get(ctx, "shop", fp); !ok || src != analysis.SourceValkey {
		t.Fatalf("second cache: Get = %q, %v; want a valkey hit", src, ok)
	}
}

// neverAvailable checks that c stays away from Valkey, answers from memory at once, and
// reports connect errors; it returns the last one.
func neverAvailable(t *testing.T, c *Tiered, rec *recorder) error {
	t.Helper()
	harness.Eventually(t, 5*time.Second, "a connect error reported", func() bool { return rec.errors("connect error") > 0 })
	ctx := context.Background()
	tm := newTiming(t)
	tm.call("Set", skipBound, func() { c.Set(ctx, "shop", "fp", decision("x")) })
	tm.call("Get", skipBound, func() {
		if _, src, ok := c.Get(ctx, "shop", "fp"); !ok || src != analysis.SourceMemory {
			t.Errorf("Get = %q, %v; want a memory hit", src, ok)
		}
	})
	if c.Available() {
		t.Fatal("Available")
	}
	return rec.lastError("connect")
}

func TestValkeyTLS(t *testing.T) {
	t.Parallel()
	certs, err := harness.GenerateCerts(filepath.Join(t.TempDir(), "certs"))
	if err != nil {
		t.Fatal(err)
	}
	r := harness.StartRedisWith(t, harness.RedisOptions{TLS: certs})
	tlsOpts := func() Options {
		o := testOptions(r.Addr)
		o.ValkeyURL = "rediss://" + r.Addr
		return o
	}

	t.Run("verified", func(t *testing.T) {
		t.Parallel()
		tc, err := certs.ClientTLSConfig("")
		if err != nil {
			t.Fatal(err)
		}
		o := tlsOpts()
		o.TLSConfig = tc // ServerName comes from the URL: 127.0.0.1
		roundTrip(t, open(t, o, nil), o)
	})
	t.Run("skip verify", func(t *testing.T) {
		t.Parallel()
		o := tlsOpts()
		o.TLSSkipVerify = true
		roundTrip(t, open(t, o, nil), o)
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		t.Parallel()
		rec := newRecorder()
		err := neverAvailable(t, open(t, tlsOpts(), rec), rec)
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("connect error = %v, want an unknown-authority error", err)
		}
	})
	t.Run("wrong host name", func(t *testing.T) {
		t.Parallel()
		tc, err := certs.ClientTLSConfig("db.example")
		if err != nil {
			t.Fatal(err)
		}
		o := tlsOpts()
		o.TLSConfig = tc
		rec := newRecorder()
		err = neverAvailable(t, open(t, o, rec), rec)
		var host x509.HostnameError
		if !errors.As(err, &host) {
			t.Fatalf("connect error = %v, want a host name error", err)
		}
	})
	t.Run("plaintext to a TLS port", func(t *testing.T) {
		t.Parallel()
		rec := newRecorder()
		neverAvailable(t, open(t, testOptions(r.Addr), rec), rec)
	})
}

func TestValkeyAuth(t *testing.T) {
	t.Parallel()
	r := harness.StartRedisWith(t, harness.RedisOptions{Args: []string{
		"--user", "default", "off", "--user", "alice", "on", ">wonderland", "~*", "&*", "+@all"}})
	ctx := context.Background()

	t.Run("URL user, password and database", func(t *testing.T) {
		t.Parallel()
		o := testOptions(r.Addr)
		o.ValkeyURL = "redis://alice:wonderland@" + r.Addr + "/3"
		c := open(t, o, nil)
		roundTrip(t, c, o)
		raw, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{r.Addr}, ForceSingleClient: true,
			DisableCache: true, Username: "alice", Password: "wonderland", SelectDB: 3})
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		n, err := raw.Do(ctx, raw.B().Exists().Key(Key("shop", strings.ReplaceAll(t.Name(), "/", "-"))).Build()).AsInt64()
		if err != nil || n != 1 {
			t.Fatalf("EXISTS in database 3 = %d, %v", n, err)
		}
	})
	t.Run("credentials function", func(t *testing.T) {
		t.Parallel()
		var calls atomic.Int32
		o := testOptions(r.Addr)
		o.Credentials = func(ctx context.Context) (Credentials, error) {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("credentials asked without a deadline")
			}
			calls.Add(1)
			return Credentials{Username: "alice", Password: "wonderland"}, nil
		}
		roundTrip(t, open(t, o, nil), o)
		if calls.Load() == 0 {
			t.Fatal("credentials function never called")
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		o := testOptions(r.Addr)
		o.ValkeyURL = "redis://alice:rabbit@" + r.Addr
		rec := newRecorder()
		err := neverAvailable(t, open(t, o, rec), rec)
		if err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Fatalf("connect error = %v, want WRONGPASS", err)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		t.Parallel()
		rec := newRecorder()
		neverAvailable(t, open(t, testOptions(r.Addr), rec), rec)
	})
}
