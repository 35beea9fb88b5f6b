package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cucumber/godog"
	"github.com/jackc/pgx/v5"

	"github.com/pgproxy/pgproxy/tests/harness"
)

// session names a step's session: "" for "the session".
const sessionRef = `(?:the session|session "(\w+)")`

// registerSessionSteps defines the steps of pgx client sessions through the proxy.
func registerSessionSteps(sc *godog.ScenarioContext, w *world) {
	sc.Step(`^"([^"]*)" connects(?: with password "([^"]*)")?(?: over (plaintext|TLS|direct TLS))?(?: with "([^"]*)")?$`,
		func(user, pass, transport, extra string) {
			_, w.lastErr = w.connect(defaultSession, w.dsn(user, pass, transport, extra))
		})
	sc.Step(`^"([^"]*)" connects with password "([^"]*)" to database "([^"]*)"$`, func(user, pass, db string) {
		dsn := strings.Replace(w.dsn(user, pass, "", ""), "/"+harness.TestDB+"?", "/"+db+"?", 1)
		_, w.lastErr = w.connect(defaultSession, dsn)
	})
	sc.Step(`^the connection is not encrypted$`, func() error {
		if _, ok := w.session("").conn.PgConn().Conn().(*tls.Conn); ok {
			return fmt.Errorf("connection uses TLS")
		}
		return nil
	})
	sc.Step(`^session "(\w+)" disconnects abruptly$`, func(name string) error {
		s := w.session(name)
		_ = s.conn.PgConn().Conn().Close()
		if s.running != nil {
			<-s.running
		}
		delete(w.sessions, name)
		return nil
	})
	sc.Step(`^the backend of session "(\w+)" is gone from pg_stat_activity within (\d+) seconds$`,
		func(name string, secs int) error {
			return w.pollSuperuser(fmt.Sprintf("SELECT count(*) FROM pg_stat_activity WHERE pid = %d",
				w.backendPIDs[name]), "0", secs)
		})
	sc.Step(`^PostgreSQL has no session with application_name "([^"]*)" within (\d+) seconds$`,
		func(app string, secs int) error {
			return w.pollSuperuser(fmt.Sprintf("SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'", app), "0", secs)
		})
	sc.Step(`^(\d+) sessions as "([^"]*)" with application_name "([^"]*)" each run (\d+) queries at the same time$`,
		w.concurrentSessions)
	sc.Step(`^session "(\w+)" is connected as "([^"]*)"(?: over (plaintext|TLS|direct TLS))?$`,
		func(name, user, transport string) error {
			_, err := w.connect(name, w.dsn(user, passwords[user], transport, ""))
			return err
		})
	sc.Step(`^the connection succeeds$`, func() error {
		if w.lastErr != nil {
			return fmt.Errorf("connection failed: %w (SQLSTATE %s)", w.lastErr, sqlstateOf(w.lastErr))
		}
		return nil
	})
	sc.Step(`^the connection is encrypted with TLS$`, func() error {
		if _, ok := w.session("").conn.PgConn().Conn().(*tls.Conn); !ok {
			return fmt.Errorf("connection is %T, not TLS", w.session("").conn.PgConn().Conn())
		}
		return nil
	})
	sc.Step(`^the connection negotiated ALPN "([^"]*)"$`, func(proto string) error {
		tc, ok := w.session("").conn.PgConn().Conn().(*tls.Conn)
		if !ok {
			return fmt.Errorf("connection is not TLS")
		}
		if got := tc.ConnectionState().NegotiatedProtocol; got != proto {
			return fmt.Errorf("ALPN protocol %q, want %q", got, proto)
		}
		return nil
	})
	sc.Step(`^the connection is refused with SQLSTATE "(\w+)"$`, func(code string) error {
		if w.lastErr == nil {
			return fmt.Errorf("connection succeeded, want SQLSTATE %s", code)
		}
		if got := sqlstateOf(w.lastErr); got != code {
			return fmt.Errorf("connection error %v: SQLSTATE %s, want %s", w.lastErr, got, code)
		}
		w.t.Logf("connection refused as expected: %v", w.lastErr)
		return nil
	})
	sc.Step(`^the connection fails in the client with an error mentioning "([^"]*)"$`, func(text string) error {
		if w.lastErr == nil {
			return fmt.Errorf("connection succeeded")
		}
		if pe := pgError(w.lastErr); pe != nil {
			return fmt.Errorf("want a client-side error, got a server error %s: %s", pe.Code, pe.Message)
		}
		if !strings.Contains(w.lastErr.Error(), text) {
			return fmt.Errorf("error %q does not mention %q", w.lastErr, text)
		}
		return nil
	})
	sc.Step(`^the error (message|hint) mentions "([^"]*)"$`, func(field, text string) error {
		pe := pgError(w.lastErr)
		if pe == nil {
			return fmt.Errorf("no server error to inspect (last error: %v)", w.lastErr)
		}
		got := pe.Message
		if field == "hint" {
			got = pe.Hint
		}
		if !strings.Contains(got, text) {
			return fmt.Errorf("error %s %q does not mention %q (message %q, detail %q, hint %q)",
				field, got, text, pe.Message, pe.Detail, pe.Hint)
		}
		return nil
	})
	sc.Step(`^`+sessionRef+` runs "([^"]*)" and gets "([^"]*)"$`, w.runAndGet)
	sc.Step(`^`+sessionRef+` runs "([^"]*)"$`, func(name, sql string) error {
		_, err := w.run(name, sql)
		return err
	})
	sc.Step(`^`+sessionRef+` runs "([^"]*)" and fails with SQLSTATE "(\w+)"$`, func(name, sql, code string) error {
		_, err := w.run(name, sql)
		if got := sqlstateOf(err); got != code {
			return fmt.Errorf("%s: error %v, SQLSTATE %s, want %s", sql, err, got, code)
		}
		return nil
	})
	sc.Step(`^`+sessionRef+` runs "([^"]*)" with the parameter "([^"]*)"$`, func(name, sql, param string) error {
		ctx, cancel := w.stepCtx(30 * time.Second)
		defer cancel()
		_, err := w.session(name).conn.Exec(ctx, sql, param)
		return err
	})
	sc.Step(`^`+sessionRef+` is still usable$`, func(name string) error {
		return w.runAndGet(name, "SELECT 'still here'", "still here")
	})
	sc.Step(`^`+sessionRef+` is ended with one of SQLSTATE "([^"]*)"$`, func(name, codes string) error {
		_, err := w.run(name, "SELECT 1")
		if err == nil {
			return fmt.Errorf("session still works, want an error with one of %s", codes)
		}
		if !slices.Contains(strings.Fields(codes), sqlstateOf(err)) {
			return fmt.Errorf("error %v: SQLSTATE %s, want one of %s", err, sqlstateOf(err), codes)
		}
		w.t.Logf("session %s ended: %v", name, err)
		return nil
	})
	sc.Step(`^session "(\w+)" starts "([^"]*)"$`, w.startQuery)
	sc.Step(`^session "(\w+)" disconnects$`, func(name string) error {
		s := w.session(name)
		ctx, cancel := w.stepCtx(5 * time.Second)
		defer cancel()
		delete(w.sessions, name)
		return s.conn.Close(ctx)
	})
	sc.Step(`^a new session can connect within (\d+) seconds$`, func(secs int) error {
		deadline := time.Now().Add(time.Duration(secs) * time.Second)
		for {
			_, err := w.connect("new", w.dsn("scram_user", "scram_pass", "", ""))
			if err == nil {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("no new session within %d s: %w", secs, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	sc.Step(`^session "(\w+)" sends a (\d+) (KB|MB) query$`, func(name string, n int, unit string) {
		size := n << 10
		if unit == "MB" {
			size = n << 20
		}
		// The Query message is the text plus a few bytes of SQL and framing.
		_, _ = w.run(name, "SELECT length('"+strings.Repeat("x", size-64)+"')")
	})
	sc.Step(`^the last statement of session "(\w+)" succeeded$`, func(name string) error {
		if err := w.session(name).lastErr; err != nil {
			return fmt.Errorf("last statement failed: %w (SQLSTATE %s)", err, sqlstateOf(err))
		}
		return nil
	})
	sc.Step(`^session "(\w+)" was ended with SQLSTATE "(\w+)"$`, func(name, code string) error {
		s := w.session(name)
		if got := sqlstateOf(s.lastErr); got != code {
			return fmt.Errorf("last statement: error %v, SQLSTATE %s, want %s", s.lastErr, got, code)
		}
		if _, err := w.run(name, "SELECT 1"); err == nil {
			return fmt.Errorf("session still works after the %s error", code)
		}
		return nil
	})
	sc.Step(`^session "(\w+)" cancels its query$`, func(name string) error {
		ctx, cancel := w.stepCtx(10 * time.Second)
		defer cancel()
		return w.session(name).conn.PgConn().CancelRequest(ctx)
	})
	sc.Step(`^the query of session "(\w+)" succeeds within (\d+) seconds$`, func(name string, secs int) error {
		err := w.waitQuery(name, secs)
		if err != nil {
			return fmt.Errorf("query failed: %w (SQLSTATE %s)", err, sqlstateOf(err))
		}
		return nil
	})
	sc.Step(`^the query of session "(\w+)" fails with (?:one of )?SQLSTATE "([^"]*)" within (\d+) seconds$`,
		func(name, codes string, secs int) error {
			err := w.waitQuery(name, secs)
			if err == nil {
				return fmt.Errorf("query succeeded, want SQLSTATE %s", codes)
			}
			if !slices.Contains(strings.Fields(codes), sqlstateOf(err)) {
				return fmt.Errorf("query error %v: SQLSTATE %s, want %s", err, sqlstateOf(err), codes)
			}
			w.t.Logf("query of session %s failed as expected: %v", name, err)
			return nil
		})
}

// run executes sql with the simple protocol on the named session.
func (w *world) run(name, sql string) (string, error) {
	s := w.session(name)
	ctx, cancel := w.stepCtx(30 * time.Second)
	defer cancel()
	got, err := exec(ctx, s.conn, sql)
	s.lastErr = err
	return got, err
}

func (w *world) runAndGet(name, sql, want string) error {
	got, err := w.run(name, sql)
	if err != nil {
		return fmt.Errorf("%s: %w (SQLSTATE %s)", sql, err, sqlstateOf(err))
	}
	if got != want {
		return fmt.Errorf("%s: got %q, want %q", sql, got, want)
	}
	return nil
}

// startQuery runs sql on the named session in the background; waitQuery collects its outcome.
func (w *world) startQuery(name, sql string) error {
	s := w.session(name)
	if s.running != nil {
		return fmt.Errorf("session %q already runs a query", name)
	}
	s.running = make(chan error, 1)
	go runInBackground(w.ctx, s, sql)
	// The next step acts on the running statement (cancel, terminate, SIGTERM): wait until
	// PostgreSQL shows it running, read over the unix socket.
	err := w.pollSuperuser(fmt.Sprintf("SELECT count(*) FROM pg_stat_activity WHERE pid = %d AND state = 'active'",
		s.backendPID), "1", 10)
	if err != nil {
		return fmt.Errorf("statement of session %q not seen running: %w", name, err)
	}
	return nil
}

func (w *world) waitQuery(name string, secs int) error {
	s := w.session(name)
	if s.running == nil {
		w.t.Fatalf("session %q runs no query", name)
	}
	select {
	case err := <-s.running:
		s.running = nil
		return err
	case <-time.After(time.Duration(secs) * time.Second):
		return fmt.Errorf("query of session %q still running after %d s", name, secs)
	}
}

// pollSuperuser runs sql as the superuser (bypassing the proxy) until it returns want.
func (w *world) pollSuperuser(sql, want string, secs int) error {
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	for {
		got, err := w.superuserValue(sql)
		if err == nil && got == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %q (%v) after %d s, want %q", sql, got, err, secs, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// concurrentSessions opens n sessions at once, each running queries parameterised with its
// own numbers and checking every answer, then closes them.
func (w *world) concurrentSessions(n int, user, app string, queries int) error {
	dsn := w.dsn(user, passwords[user], "", "application_name="+app)
	ctx, cancel := w.stepCtx(time.Minute)
	defer cancel()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- concurrentClient(ctx, dsn, i, queries)
		}()
	}
	wg.Wait()
	close(errs)
	var failed []string
	for err := range errs {
		if err != nil {
			failed = append(failed, err.Error())
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d sessions failed:\n%s", len(failed), n, strings.Join(failed, "\n"))
	}
	return nil
}

// concurrentClient is one of the sessions of concurrentSessions.
func concurrentClient(ctx context.Context, dsn string, id, queries int) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("session %d: connect: %w", id, err)
	}
	defer conn.Close(ctx)
	for q := 0; q < queries; q++ {
		var got int
		var label string
		if err := conn.QueryRow(ctx, "SELECT $1::int * 1000 + $2::int, $3::text", id, q, fmt.Sprint(id)).Scan(&got, &label); err != nil {
			return fmt.Errorf("session %d query %d: %w", id, q, err)
		}
		if got != id*1000+q || label != fmt.Sprint(id) {
			return fmt.Errorf("session %d query %d: got (%d, %q), another session's answer?", id, q, got, label)
		}
	}
	return nil
}
