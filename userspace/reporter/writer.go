package reporter

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgproxy/pgproxy/userspace/sqlparse"
)

// normCacheSize is how many normalized query texts the writer keeps, by
// fingerprint.
const normCacheSize = 4096

// writer is the state of the writer goroutine: its connection and the
// batches it is writing. Only writeLoop's goroutine touches it.
type writer struct {
	r        *Reporter
	conn     *pgx.Conn
	metrics  []Metric
	issues   []Issue
	explains []pendingExplanation
	failures int // consecutive failed attempts, for the backoff
	// closeSeen is set once a backoff was cut short by Close.
	closeSeen bool
	norm      *lru.Cache[string, string]
}

// writeLoop is the writer goroutine: it connects, then takes batches from
// the queues and writes them, retrying failures, until Close.
func (r *Reporter) writeLoop() {
	defer close(r.done)
	w := &writer{r: r}
	if !r.opts.KeepQueryConstants {
		w.norm, _ = lru.New[string, string](normCacheSize)
	}
	defer w.closeConn()
	w.connectAtStart()
	for {
		draining := w.collect()
		if len(w.metrics)+len(w.issues)+len(w.explains) > 0 && !w.write() {
			w.abandon()
			return
		}
		if draining && len(r.metrics) == 0 && len(r.issues) == 0 {
			return
		}
	}
}

// connectAtStart connects and creates the schema before the first record
// arrives, retrying with backoff, until it succeeds or Close is called
// (then the queues decide whether a connection is still needed).
func (w *writer) connectAtStart() {
	for {
		err := w.ensureConn()
		if err == nil {
			w.failures = 0
			return
		}
		if w.abandoned() {
			return
		}
		w.fail(err)
		if w.sleep() {
			return
		}
	}
}

// collect fills the batches from the queues: it returns when a batch is
// full, when FlushInterval has passed since the first record of the batch,
// or, once Close was called (draining), when the queues are empty.
func (w *writer) collect() (draining bool) {
	r := w.r
	var timer *time.Timer
	var flush <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
		w.report()
	}()
	closing := r.closing
	for len(w.metrics) < r.opts.BatchSize && len(w.issues) < r.opts.BatchSize {
		if draining {
			select {
			case m := <-r.metrics:
				w.metrics = append(w.metrics, m)
			case i := <-r.issues:
				w.issues = append(w.issues, i)
			case e := <-r.explains:
				w.explains = append(w.explains, pendingExplanation{e: e})
			default:
				return true
			}
			continue
		}
		select {
		case m := <-r.metrics:
			w.metrics = append(w.metrics, m)
		case i := <-r.issues:
			w.issues = append(w.issues, i)
		case e := <-r.explains:
			w.explains = append(w.explains, pendingExplanation{e: e})
		case <-flush:
			return false
		case <-closing:
			draining = true
			continue
		}
		if timer == nil {
			timer = time.NewTimer(r.opts.FlushInterval)
			flush = timer.C
		}
	}
	select {
	case <-closing:
		draining = true
	default:
	}
	return draining
}

// report publishes the batch sizes and queue depths.
func (w *writer) report() {
	r := w.r
	r.m.pending.Store(int64(len(w.metrics)))
	r.i.pending.Store(int64(len(w.issues)))
	if r.hooks.QueueDepth != nil {
		r.hooks.QueueDepth(TableMetrics, len(r.metrics)+len(w.metrics))
		r.hooks.QueueDepth(TableIssues, len(r.issues)+len(w.issues))
	}
}

// write writes both batches, retrying with backoff until they are written
// (or their bad records dropped). It returns false when Close's deadline
// ended the attempts.
func (w *writer) write() bool {
	for {
		err := w.tryWrite()
		w.report()
		if err == nil {
			w.failures = 0
			return true
		}
		if w.abandoned() {
			return false // the error is the interruption, not a write error
		}
		w.fail(err)
		if w.sleep() && w.abandoned() {
			return false
		}
	}
}

func (w *writer) tryWrite() error {
	if err := w.ensureConn(); err != nil {
		return err
	}
	var err error
	w.metrics, err = copyRows(w, &metricsTable, &w.r.m, w.metrics, w.metricValues)
	if err == nil {
		w.issues, err = copyRows(w, &issuesTable, &w.r.i, w.issues, w.issueValues)
	}
	if err == nil {
		err = w.explain()
	}
	if err != nil {
		// Whatever failed (network, server shutdown, a read-only standby
		// after a failover, a table dropped under us), a new connection
		// and a fresh schema check are the way back.
		w.closeConn()
	}
	return err
}

// ensureConn connects and checks the schema when there is no connection.
func (w *writer) ensureConn() error {
	if w.conn != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(w.r.hard, w.r.opts.WriteTimeout)
	defer cancel()
	cfg := w.r.cfg
	if before := w.r.opts.BeforeConnect; before != nil {
		cfg = cfg.Copy()
		if err := before(ctx, cfg); err != nil {
			return fmt.Errorf("reporter: connect: %w", err)
		}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("reporter: connect: %w", err)
	}
	if err := ensureSchema(ctx, conn); err != nil {
		_ = conn.Close(context.Background())
		return err
	}
	w.conn = conn
	w.r.connected.Store(true)
	return nil
}

func (w *writer) closeConn() {
	if w.conn == nil {
		return
	}
	// Terminate is best effort: at most a second, nothing past Close's deadline.
	ctx, cancel := context.WithTimeout(w.r.hard, time.Second)
	defer cancel()
	_ = w.conn.Close(ctx)
	w.conn = nil
	w.r.connected.Store(false)
}

// fail counts and reports err.
func (w *writer) fail(err error) {
	w.r.lastErr = err
	w.r.writeErrors.Add(1)
	if w.r.hooks.WriteError != nil {
		w.r.hooks.WriteError(err)
	}
}

// sleep waits out the backoff for the next attempt. Close cuts the wait
// short once, and the backoff starts again from Min, so that the drain
// tries at once and often. It reports whether it was cut short (by Close or
// by Close's deadline).
func (w *writer) sleep() (interrupted bool) {
	w.failures++
	b := w.r.opts.Backoff
	d := b.Min
	for i := 1; i < w.failures && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	d += time.Duration(rand.Int64N(int64(d)/5 + 1))
	t := time.NewTimer(d)
	defer t.Stop()
	var closing <-chan struct{}
	if !w.closeSeen {
		closing = w.r.closing
	}
	select {
	case <-t.C:
		return false
	case <-closing:
		w.closeSeen = true
		w.failures = 0
		return true
	case <-w.r.hard.Done():
		return true
	}
}

// abandoned reports whether Close's deadline has passed.
func (w *writer) abandoned() bool { return w.r.hard.Err() != nil }

// abandon counts what the writer holds and what is queued as lost; Close
// reports it.
func (w *writer) abandon() {
	r := w.r
	r.lostM = len(w.metrics) + drainCount(r.metrics)
	r.lostI = len(w.issues) + drainCount(r.issues)
	w.metrics, w.issues = nil, nil
	r.drop(TableMetrics, &r.m, DropClosed, r.lostM)
	r.drop(TableIssues, &r.i, DropClosed, r.lostI)
	w.report()
}

// copyRows writes rows to t with COPY and returns the rows still to write:
// none on success, all that were not written when the write failed. A batch
// that PostgreSQL rejects because of its data is split in halves until the
// bad records are found; they are dropped and counted, the rest written.
func copyRows[T any](w *writer, t *table, c *counters, rows []T, fill func(*T, []any)) ([]T, error) {
	if len(rows) == 0 {
		return rows, nil
	}
	type span struct{ lo, hi int }
	stack := []span{{0, len(rows)}}
	vals := make([]any, len(t.columns))
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		ctx, cancel := context.WithTimeout(w.r.hard, w.r.opts.WriteTimeout)
		src := &rowSource[T]{rows: rows[s.lo:s.hi], vals: vals, fill: fill}
		n, err := w.conn.CopyFrom(ctx, pgx.Identifier{Schema, string(t.name)}, t.columnNames(), src)
		cancel()
		switch {
		case err == nil:
			c.written.Add(uint64(n))
			c.batches.Add(1)
			if w.r.hooks.Written != nil {
				w.r.hooks.Written(t.name, int(n))
			}
		case !isRecordError(err):
			// Keep what was not written, for the retry.
			left := make([]T, 0, len(rows))
			left = append(left, rows[s.lo:s.hi]...)
			for i := len(stack) - 1; i >= 0; i-- {
				left = append(left, rows[stack[i].lo:stack[i].hi]...)
			}
			return left, fmt.Errorf("reporter: copy %s: %w", t.name, err)
		case s.hi-s.lo == 1:
			w.fail(&RejectedError{Table: t.name, Err: err})
			w.r.drop(t.name, c, DropRejected, 1)
		default:
			mid := (s.lo + s.hi) / 2
			stack = append(stack, span{mid, s.hi}, span{s.lo, mid})
		}
	}
	clear(rows) // the batch's array is reused: let the strings go
	return rows[:0], nil
}

// rowSource feeds rows to CopyFrom, reusing one values slice (CopyFrom
// encodes each row before asking for the next).
type rowSource[T any] struct {
	rows []T
	i    int
	vals []any
	fill func(*T, []any)
}

func (s *rowSource[T]) Next() bool { s.i++; return s.i <= len(s.rows) }

func (s *rowSource[T]) Values() ([]any, error) {
	s.fill(&s.rows[s.i-1], s.vals)
	return s.vals, nil
}

func (s *rowSource[T]) Err() error { return nil }

// RejectedError is reported to Hooks.WriteError for a record PostgreSQL
// refused; the record was dropped.
type RejectedError struct {
	Table Table
	// Err is PostgreSQL's error (a *pgconn.PgError).
	Err error
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("reporter: %s record rejected and dropped: %v", e.Table, e.Err)
}

// Unwrap returns Err.
func (e *RejectedError) Unwrap() error { return e.Err }

// isRecordError reports an error caused by the data of the rows, not by
// the connection or the schema: class 22 (data exception: invalid byte
// sequence, untranslatable character, ...), class 23 (integrity constraint
// violation, e.g. a CHECK an operator added) and 54000 (a value too large).
func isRecordError(err error) bool {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || len(pg.Code) != 5 {
		return false
	}
	switch pg.Code[:2] {
	case "22", "23":
		return true
	}
	return pg.Code == "54000"
}

// metricValues and issueValues fill a row's values in column order. (The
// values are boxed: about 17 small allocations a row on the writer
// goroutine. Pointers would not help: pgx dereferences them by reflection,
// which allocates too.)
func (w *writer) metricValues(m *Metric, v []any) {
	v[0] = m.RecordedAt
	v[1] = m.Fingerprint
	v[2] = w.queryText(m.QueryText, m.Fingerprint)
	v[3] = identity(m.Identity, m.User)
	v[4] = m.User
	v[5] = m.Database
	v[6] = m.Mode
	v[7] = m.Action
	v[8] = m.Verdict
	v[9] = m.DecisionSource
	v[10] = ms(m.Analysis)
	v[11] = ms(m.Backend)
	v[12] = ms(m.Total)
	v[13] = m.Rows
	v[14] = m.SQLState
	v[15] = m.Node
	v[16] = int64(m.ConnID)
	v[17] = w.r.opts.Instance
	v[18] = nil
	if m.LLM > 0 {
		v[18] = ms(m.LLM)
	}
}

func (w *writer) issueValues(i *Issue, v []any) {
	v[0] = i.DetectedAt
	v[1] = i.Fingerprint
	v[2] = w.queryText(i.QueryText, i.Fingerprint)
	v[3] = identity(i.Identity, i.User)
	v[4] = i.User
	v[5] = i.Database
	v[6] = i.Verdict
	v[7] = i.Reason
	v[8] = i.Suggestion
	v[9] = i.Check
	v[10] = i.Evidence
	v[11] = i.Source
	v[12] = i.Origin
	v[13] = i.Action
	v[14] = int64(i.ConnID)
	v[15] = w.r.opts.Instance
	v[16] = i.Model
}

// identity is the identity column: the token identity, or in passthrough
// (no token) the database user.
func identity(token, user string) string {
	if token == "" {
		return user
	}
	return token
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// queryText returns the value for query_text: NULL for "", the text itself
// with KeepQueryConstants, else its normalized form (NULL when it does not
// parse), cached by fingerprint.
func (w *writer) queryText(text, fingerprint string) any {
	if text == "" {
		return nil
	}
	if w.norm != nil {
		n, ok := "", false
		if fingerprint != "" {
			n, ok = w.norm.Get(fingerprint)
		}
		if !ok {
			var err error
			if n, err = sqlparse.Normalize(text); err != nil {
				return nil
			}
			if fingerprint != "" {
				w.norm.Add(fingerprint, n)
			}
		}
		text = n
	}
	return text
}
