package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"
)

// clientOption turns Options into valkey-go's client options.
func clientOption(o Options) (valkey.ClientOption, error) {
	opt, err := valkey.ParseURL(o.ValkeyURL)
	if err != nil {
		return opt, fmt.Errorf("cache: valkey URL: %w", err)
	}
	if opt.DialCtxFn != nil {
		return opt, errors.New("cache: valkey URL: unix sockets are not supported")
	}
	if opt.TLSConfig == nil && (o.TLSConfig != nil || o.TLSSkipVerify) {
		return opt, errors.New("cache: valkey TLS settings need a rediss:// URL")
	}
	if opt.TLSConfig != nil && o.TLSConfig != nil {
		tc := o.TLSConfig.Clone()
		if tc.ServerName == "" {
			tc.ServerName = opt.TLSConfig.ServerName
		}
		tc.MinVersion = max(tc.MinVersion, opt.TLSConfig.MinVersion)
		tc.InsecureSkipVerify = tc.InsecureSkipVerify || opt.TLSConfig.InsecureSkipVerify
		opt.TLSConfig = tc
	}
	if o.TLSSkipVerify {
		opt.TLSConfig.InsecureSkipVerify = true
	}
	if o.Credentials != nil {
		creds, timeout := o.Credentials, o.ConnectTimeout
		opt.AuthCredentialsFn = func(valkey.AuthCredentialsContext) (valkey.AuthCredentials, error) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			c, err := creds(ctx)
			return valkey.AuthCredentials{Username: c.Username, Password: c.Password, RefreshAfter: c.RefreshAfter}, err
		}
	}
	opt.ConnLifetime = o.ConnLifetime
	if opt.ClientName == "" {
		opt.ClientName = "pgproxy"
	}
	opt.Dialer.Timeout = o.ConnectTimeout
	// The memory tier is the client-side cache, and the breaker replaces retries: a failed
	// read is a miss at once.
	opt.DisableCache = true
	opt.DisableRetry = true
	return opt, nil
}

// clientBox holds the client for an atomic.Pointer.
type clientBox struct{ c valkey.Client }

// writeOp is a queued Valkey write.
type writeOp struct {
	key   string
	value []byte // nil: delete the key
}

// remote is the Valkey tier: the client (made in the background), the breaker, the write
// queue and the invalidation subscription.
type remote struct {
	o     Options
	opt   valkey.ClientOption
	hooks *Hooks
	// onMessage handles a message on InvalidationChannel; onResubscribe a subscription
	// established again after it was lost.
	onMessage     func(string)
	onResubscribe func()

	client     atomic.Pointer[clientBox]
	up         atomic.Bool
	failures   atomic.Int32
	trip       chan struct{} // the breaker opened; wakes keep
	subscribed atomic.Bool
	everSubbed atomic.Bool

	writes  chan writeOp
	pending atomic.Int64 // queued or in-flight writes
	closed  atomic.Bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newRemote(o Options, opt valkey.ClientOption, hooks *Hooks, onMessage func(string), onResubscribe func()) *remote {
	ctx, cancel := context.WithCancel(context.Background())
	r := &remote{o: o, opt: opt, hooks: hooks, onMessage: onMessage, onResubscribe: onResubscribe,
		trip: make(chan struct{}, 1), writes: make(chan writeOp, o.WriteQueue), ctx: ctx, cancel: cancel}
	r.wg.Add(1 + o.WriteWorkers)
	go r.keep()
	for range o.WriteWorkers {
		go r.writer()
	}
	return r
}

// usable returns the client when Valkey is available and the cache open, else nil.
func (r *remote) usable() valkey.Client {
	if !r.up.Load() || r.closed.Load() {
		return nil
	}
	if b := r.client.Load(); b != nil {
		return b.c
	}
	return nil
}

func (r *remote) setUp(up bool) {
	if r.up.Swap(up) != up {
		r.hooks.available(up)
	}
}

// record feeds the breaker with the outcome of one operation. A reply from the server (nil
// or an error reply) is a success: the breaker is about reaching Valkey in time. A failure
// because the caller's own context ended is not counted.
func (r *remote) record(err error, caller context.Context) {
	if err == nil || valkey.IsValkeyNil(err) {
		r.failures.Store(0)
		return
	}
	if _, reply := valkey.IsValkeyErr(err); reply {
		r.failures.Store(0)
		return
	}
	if caller.Err() != nil {
		return
	}
	if int(r.failures.Add(1)) >= r.o.BreakerFailures && r.up.CompareAndSwap(true, false) {
		r.hooks.available(false)
		select {
		case r.trip <- struct{}{}:
		default:
		}
	}
}

// keep is the goroutine that connects, and after the breaker opened waits and probes until
// Valkey answers again. The pause before a probe doubles after each failed probe; it starts
// over at BreakerBackoff only when Valkey stayed available for BreakerMaxBackoff, so a Valkey
// that passes probes but fails queries is not retried at the shortest pause forever.
func (r *remote) keep() {
	defer r.wg.Done()
	backoff := r.o.BreakerBackoff
	next := func() { backoff = min(2*backoff, r.o.BreakerMaxBackoff) }
	var upSince time.Time
	for r.ctx.Err() == nil {
		box := r.client.Load()
		switch {
		case box == nil:
			c, err := valkey.NewClient(r.opt) // dials: bounded by ConnectTimeout
			if err != nil {
				if r.ctx.Err() == nil {
					r.hooks.error("connect", err)
				}
				if !r.sleep(backoff) {
					return
				}
				next()
				continue
			}
			r.client.Store(&clientBox{c})
			if r.ctx.Err() != nil { // close ran meanwhile and found no client to close
				c.Close()
				return
			}
			r.wg.Add(1)
			go r.subscribe(c)
			// Available after the first probe, in the next round.
		case r.up.Load():
			select {
			case <-r.ctx.Done():
				return
			case <-r.trip:
			}
			if time.Since(upSince) >= r.o.BreakerMaxBackoff {
				backoff = r.o.BreakerBackoff
			} else {
				next()
			}
			if !r.sleep(backoff) {
				return
			}
		default:
			err := r.probe(box.c)
			if err == nil {
				r.failures.Store(0)
				upSince = time.Now()
				r.setUp(true)
				continue
			}
			if r.ctx.Err() != nil {
				return
			}
			r.hooks.error("connect", err)
			next()
			if !r.sleep(backoff) {
				return
			}
		}
	}
}

// probe checks that Valkey answers, and answers within OpTimeout: a first PING may connect
// (ConnectTimeout), a second one must come back as fast as a query needs.
func (r *remote) probe(c valkey.Client) error {
	ctx, cancel := context.WithTimeout(r.ctx, r.o.ConnectTimeout)
	err := c.Do(ctx, c.B().Ping().Build()).Error()
	cancel()
	if err != nil {
		return err
	}
	ctx, cancel = context.WithTimeout(r.ctx, r.o.OpTimeout)
	defer cancel()
	if err := c.Do(ctx, c.B().Ping().Build()).Error(); err != nil {
		return fmt.Errorf("valkey answers, but not within %s: %w", r.o.OpTimeout, err)
	}
	return nil
}

// sleep waits d and reports false when the cache is being closed.
func (r *remote) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// subscribe is the goroutine that keeps a subscription to InvalidationChannel on a
// connection of its own, and makes it again when it is lost.
func (r *remote) subscribe(c valkey.Client) {
	defer r.wg.Done()
	backoff := r.o.BreakerBackoff
	for r.ctx.Err() == nil {
		established, err := r.subscribeOnce(c)
		r.subscribed.Store(false)
		if r.ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("subscription ended")
		}
		r.hooks.error("subscribe", err)
		if established {
			backoff = r.o.BreakerBackoff
		}
		if !r.sleep(backoff) {
			return
		}
		backoff = min(2*backoff, r.o.BreakerMaxBackoff)
	}
}

// subscribeOnce subscribes and returns when the subscription ends; established reports
// whether the server confirmed it.
func (r *remote) subscribeOnce(c valkey.Client) (established bool, err error) {
	dc, release := c.Dedicate()
	defer release()
	defer dc.Close() // the connection carried a subscription: never give it back to the pool
	wait := dc.SetPubSubHooks(valkey.PubSubHooks{
		OnMessage: func(m valkey.PubSubMessage) { r.onMessage(m.Message) },
		OnSubscription: func(s valkey.PubSubSubscription) {
			if s.Kind != "subscribe" || s.Channel != InvalidationChannel {
				return
			}
			r.subscribed.Store(true)
			if r.everSubbed.Swap(true) {
				r.onResubscribe()
			}
		},
	})
	ctx, cancel := context.WithTimeout(r.ctx, r.o.ConnectTimeout)
	err = dc.Do(ctx, dc.B().Subscribe().Channel(InvalidationChannel).Build()).Error()
	cancel()
	if err != nil {
		return r.subscribed.Load(), err
	}
	select {
	case err = <-wait:
	case <-r.ctx.Done():
	}
	return r.subscribed.Load(), err
}

// get reads key and its remaining time to live. found is false for a missing key and on
// any error; err is nil for a missing key.
func (r *remote) get(ctx context.Context, c valkey.Client, key string) (value []byte, ttl time.Duration, found bool, err error) {
	opCtx, cancel := context.WithTimeout(ctx, r.o.OpTimeout)
	res := c.DoMulti(opCtx, c.B().Get().Key(key).Build(), c.B().Pttl().Key(key).Build())
	cancel()
	value, err = res[0].AsBytes()
	if err == nil {
		err = res[1].NonValkeyError()
	}
	r.record(err, ctx)
	if err != nil {
		if valkey.IsValkeyNil(err) {
			err = nil
		}
		return nil, 0, false, err
	}
	if ms, e := res[1].AsInt64(); e == nil && ms > 0 {
		ttl = time.Duration(ms) * time.Millisecond
	}
	return value, ttl, true, nil
}

// enqueue queues a write without waiting; it reports why it could not.
func (r *remote) enqueue(w writeOp) error {
	if r.closed.Load() {
		return ErrClosed
	}
	if r.usable() == nil {
		return ErrUnavailable
	}
	r.pending.Add(1)
	select {
	case r.writes <- w:
		return nil
	default:
		r.pending.Add(-1)
		return ErrQueueFull
	}
}

// writer is a goroutine that sends queued writes.
func (r *remote) writer() {
	defer r.wg.Done()
	for {
		select {
		case <-r.ctx.Done():
			return
		case w := <-r.writes:
			r.write(w)
			r.pending.Add(-1)
		}
	}
}

func (r *remote) write(w writeOp) {
	op := "set"
	if w.value == nil {
		op = "delete"
	}
	c := r.usable()
	if c == nil {
		r.hooks.error(op, ErrUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.o.OpTimeout)
	defer cancel()
	var cmd valkey.Completed
	if w.value == nil {
		cmd = c.B().Del().Key(w.key).Build()
	} else {
		cmd = c.B().Set().Key(w.key).Value(valkey.BinaryString(w.value)).Px(r.o.TTL).Build()
	}
	err := c.Do(ctx, cmd).Error()
	r.record(err, r.ctx)
	if err != nil && r.ctx.Err() == nil {
		r.hooks.error(op, err)
	}
}

// flush waits until the write queue is empty and no write is in flight.
func (r *remote) flush(ctx context.Context) error {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for r.pending.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// admin returns the client for an operator's command, whatever the breaker says.
func (r *remote) admin() (valkey.Client, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	if b := r.client.Load(); b != nil {
		return b.c, nil
	}
	return nil, ErrUnavailable
}

// publish sends an invalidation message.
func (r *remote) publish(ctx context.Context, c valkey.Client, msg string) error {
	err := c.Do(ctx, c.B().Publish().Channel(InvalidationChannel).Message(msg).Build()).Error()
	if err != nil {
		r.hooks.error("publish", err)
	}
	return err
}

// deleteMatching deletes every key that matches pattern on every node and returns how many
// were deleted.
func (r *remote) deleteMatching(ctx context.Context, c valkey.Client, pattern string) (int, error) {
	deleted := 0
	for _, node := range c.Nodes() {
		var cursor uint64
		for {
			e, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Match(pattern).Count(1000).Build()).AsScanEntry()
			if err != nil {
				return deleted, err
			}
			if len(e.Elements) > 0 {
				cmds := make(valkey.Commands, 0, len(e.Elements))
				for _, k := range e.Elements {
					cmds = append(cmds, c.B().Unlink().Key(k).Build()) // one key each: keys may be on other slots
				}
				for _, res := range c.DoMulti(ctx, cmds...) {
					n, err := res.AsInt64()
					if err != nil {
						return deleted, err
					}
					deleted += int(n)
				}
			}
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
	}
	return deleted, nil
}

// close stops the goroutines, after waiting up to grace for queued writes, and closes the
// client.
func (r *remote) close(grace time.Duration) {
	if r.closed.Swap(true) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	_ = r.flush(ctx)
	cancel()
	r.cancel()
	if b := r.client.Load(); b != nil {
		b.c.Close() // ends the subscription and any probe in flight
	}
	r.wg.Wait()
}
