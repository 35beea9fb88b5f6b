package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// stopGrace is how long queries still in flight when the run ends may take to finish before
// they are cancelled.
const stopGrace = 5 * time.Second

// counters are shared by the workers and read by the progress line.
type counters struct {
	queries atomic.Int64 // successful queries
	errors  atomic.Int64 // failed queries
	up      atomic.Int64 // workers with an open connection
	ready   atomic.Int64 // idle mode: workers that finished their first query
}

// errorTally counts the failures that share one SQLSTATE (or client-side label).
type errorTally struct {
	Count   int64
	Example string // message of the first such error
}

// result is what a run measured.
type result struct {
	Elapsed time.Duration
	Latency *histogram // successful queries only
	Errors  map[string]*errorTally
	// SteadyQueries and SteadyElapsed cover the time after ramp-up (zero when the run ended
	// before ramp-up did, or there was no ramp-up).
	SteadyQueries int64
	SteadyElapsed time.Duration
	// ConnErr is the first failure to open a connection; it ends the run.
	ConnErr error
}

// Queries returns the number of successful queries.
func (r *result) Queries() int64 { return int64(r.Latency.Count()) }

// ErrorCount returns the number of failed queries.
func (r *result) ErrorCount() int64 {
	var n int64
	for _, e := range r.Errors {
		n += e.Count
	}
	return n
}

// TPS returns successful queries per second over the whole run.
func (r *result) TPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Queries()) / r.Elapsed.Seconds()
}

// SteadyTPS returns successful queries per second after ramp-up, or 0 when unknown.
func (r *result) SteadyTPS() float64 {
	if r.SteadyElapsed <= 0 {
		return 0
	}
	return float64(r.SteadyQueries) / r.SteadyElapsed.Seconds()
}

// loadRun holds what the workers of one run share.
type loadRun struct {
	cfg     *config
	connCfg *pgx.ConnConfig
	log     io.Writer // synchronised stderr
	c       counters

	stop     context.Context // done when workers must not start another query
	queryCtx context.Context // bounds connects and queries; outlives stop by stopGrace
	abort    context.CancelFunc

	connErrOnce sync.Once
	connErr     error
}

// worker is one connection running the query in a loop. Its histogram and error tally are
// its own, merged after it returns.
type worker struct {
	id     int
	run    *loadRun
	hist   *histogram
	errors map[string]*errorTally
}

// runLoad runs the load described by cfg and returns what it measured. Cancelling ctx ends
// the run early; the result then covers the time until then.
func runLoad(ctx context.Context, cfg *config, connCfg *pgx.ConnConfig, stderr io.Writer) *result {
	start := time.Now()
	runCtx, abort := context.WithCancel(ctx)
	defer abort()
	stop, queryCtx := runCtx, runCtx
	if cfg.Duration > 0 {
		var cancelStop, cancelQuery context.CancelFunc
		stop, cancelStop = context.WithDeadline(runCtx, start.Add(cfg.Duration))
		defer cancelStop()
		queryCtx, cancelQuery = context.WithDeadline(runCtx, start.Add(cfg.Duration+stopGrace))
		defer cancelQuery()
	}
	lr := &loadRun{
		cfg: cfg, connCfg: connCfg, log: &syncWriter{w: stderr},
		stop: stop, queryCtx: queryCtx, abort: abort,
	}

	var steady struct {
		sync.Mutex
		at      time.Time
		queries int64
	}
	if cfg.Rampup > 0 && !cfg.Idle {
		t := time.AfterFunc(cfg.Rampup, func() {
			steady.Lock()
			steady.at, steady.queries = time.Now(), lr.c.queries.Load()
			steady.Unlock()
		})
		defer t.Stop()
	}

	progressDone := make(chan struct{})
	progressStopped := make(chan struct{})
	go lr.progress(start, progressDone, progressStopped)

	workers := make([]*worker, cfg.Workers)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{id: i, run: lr, hist: newHistogram(), errors: map[string]*errorTally{}}
		workers[i] = w
		wg.Go(w.loop)
	}
	wg.Wait()
	end := time.Now()
	close(progressDone)
	<-progressStopped

	res := &result{Elapsed: end.Sub(start), Latency: newHistogram(), Errors: map[string]*errorTally{}, ConnErr: lr.connErr}
	for _, w := range workers {
		res.Latency.Merge(w.hist)
		for code, t := range w.errors {
			if sum, ok := res.Errors[code]; ok {
				sum.Count += t.Count
			} else {
				res.Errors[code] = &errorTally{Count: t.Count, Example: t.Example}
			}
		}
	}
	steady.Lock()
	if !steady.at.IsZero() {
		res.SteadyQueries = res.Queries() - steady.queries
		res.SteadyElapsed = end.Sub(steady.at)
	}
	steady.Unlock()
	return res
}

// failConnect records the first connection failure and ends the run.
func (lr *loadRun) failConnect(err error) {
	lr.connErrOnce.Do(func() { lr.connErr = err })
	lr.abort()
}

// progress writes one line per interval until the run stops or done is closed.
func (lr *loadRun) progress(start time.Time, done <-chan struct{}, stopped chan<- struct{}) {
	defer close(stopped)
	if lr.cfg.Progress <= 0 {
		<-done
		return
	}
	tick := time.NewTicker(lr.cfg.Progress)
	defer tick.Stop()
	last, lastAt := int64(0), start
	for {
		select {
		case <-done:
			return
		case <-lr.stop.Done():
			<-done
			return
		case now := <-tick.C:
			if lr.stop.Err() != nil {
				continue // the run is over; workers are closing
			}
			q := lr.c.queries.Load()
			tps := float64(q-last) / now.Sub(lastAt).Seconds()
			last, lastAt = q, now
			fmt.Fprintf(lr.log, "loadgen: %5.0fs  workers %d/%d  tps %8.1f  errors %d\n",
				now.Sub(start).Seconds(), lr.c.up.Load(), lr.cfg.Workers, tps, lr.c.errors.Load())
		}
	}
}

// loop is the life of one worker: wait for its ramp-up slot, connect, run the query until
// the run stops, close.
func (w *worker) loop() {
	lr := w.run
	if d := lr.cfg.Rampup * time.Duration(w.id) / time.Duration(lr.cfg.Workers); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-lr.stop.Done():
			t.Stop()
			return
		}
	}
	conn, ok := w.connect()
	if !ok {
		return
	}
	defer func() { w.close(conn) }()
	if lr.cfg.Idle {
		w.idle(conn)
		return
	}
	for lr.stop.Err() == nil {
		t0 := time.Now()
		err := w.query(conn)
		elapsed := time.Since(t0)
		if err == nil {
			w.hist.Record(elapsed)
			lr.c.queries.Add(1)
			continue
		}
		if lr.stop.Err() != nil {
			break // interrupted by the end of the run: not a failure of the server
		}
		w.countError(err)
		if conn.IsClosed() {
			lr.c.up.Add(-1)
			if conn, ok = w.connect(); !ok {
				conn = nil
				return
			}
		}
	}
}

// idle runs the query once to show the connection works, then holds it until the run stops.
func (w *worker) idle(conn *pgx.Conn) {
	lr := w.run
	t0 := time.Now()
	if err := w.query(conn); err != nil {
		if lr.stop.Err() == nil {
			w.countError(err)
		}
	} else {
		w.hist.Record(time.Since(t0))
		lr.c.queries.Add(1)
	}
	if lr.c.ready.Add(1) == int64(lr.cfg.Workers) {
		fmt.Fprintf(lr.log, "loadgen: idle: %d connections open\n", lr.cfg.Workers)
	}
	<-lr.stop.Done()
}

// connect opens the worker's connection; on failure it ends the run and reports false.
func (w *worker) connect() (*pgx.Conn, bool) {
	lr := w.run
	conn, err := pgx.ConnectConfig(lr.queryCtx, lr.connCfg)
	if err != nil {
		if lr.stop.Err() == nil {
			lr.failConnect(fmt.Errorf("worker %d: %w", w.id, err))
		}
		return nil, false
	}
	lr.c.up.Add(1)
	return conn, true
}

func (w *worker) close(conn *pgx.Conn) {
	if conn == nil {
		return
	}
	w.run.c.up.Add(-1)
	ctx, cancel := context.WithTimeout(context.Background(), stopGrace)
	defer cancel()
	_ = conn.Close(ctx)
}

// query runs the statement once in the configured protocol and reads every row.
func (w *worker) query(conn *pgx.Conn) error {
	rows, err := conn.Query(w.run.queryCtx, w.run.cfg.Query, w.run.cfg.ExecMode)
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	rows.Close()
	return rows.Err()
}

func (w *worker) countError(err error) {
	w.run.c.errors.Add(1)
	code := errorCode(err)
	if t, ok := w.errors[code]; ok {
		t.Count++
		return
	}
	w.errors[code] = &errorTally{Count: 1, Example: err.Error()}
}

// errorCode returns the SQLSTATE of a server error, "timeout" for a timeout, and "client" for
// any other failure (network, driver) that carries no SQLSTATE.
func errorCode(err error) string {
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr):
		return pgErr.Code
	case pgconn.Timeout(err):
		return "timeout"
	default:
		return "client"
	}
}

// syncWriter serialises writes from several goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
