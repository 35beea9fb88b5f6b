package masking

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cucumber/godog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/userspace/masking"
)

// world is one scenario's state.
type world struct {
	t *testing.T
	// sessions by target and role ("hmac/analyst", "direct/dba_lead").
	sessions   map[string]*session
	last       *outcome
	ownProxies map[string]*harness.Proxy
	// ownPath is the masking file of the scenario's own proxy.
	ownPath string
	before  harness.Metrics
	exited  struct {
		status int
		output string
	}
	// values are what the last read step returned.
	values []*string
	// current is the bypass attempt of the scenario, directRun its run on
	// a direct connection.
	current   *attempt
	directRun *run
}

func (w *world) cleanup() {
	for _, s := range w.sessions {
		s.close()
	}
	w.sessions = nil
	for _, p := range w.ownProxies {
		p.Stop()
	}
	w.ownProxies = nil
}

// target names: "the proxy" is the hmac proxy, "the proxy without hmac" the
// other, "its own proxy" the scenario's, "directly" the cluster.
func targetOf(via string) string {
	switch via {
	case "directly":
		return "direct"
	case "through the proxy without hmac":
		return proxyNoHMAC
	case "through its own proxy":
		return "own"
	}
	return proxyHMAC
}

func (w *world) session(target, role string) (*session, error) {
	key := target + "/" + role
	if s := w.sessions[key]; s != nil {
		return s, nil
	}
	var cfg *pgx.ConnConfig
	var err error
	if target == "own" {
		p := w.ownProxies["own"]
		if p == nil {
			return nil, errors.New("the scenario has no proxy of its own")
		}
		cfg, err = pgx.ParseConfig(p.DSN(role, password(role), harness.TestDB, ""))
	} else {
		cfg, err = connConfig(target, role, "")
	}
	if err != nil {
		return nil, err
	}
	s, err := connect(cfg)
	if err != nil {
		return nil, err
	}
	if w.sessions == nil {
		w.sessions = map[string]*session{}
	}
	w.sessions[key] = s
	return s, nil
}

// read runs sql as role and keeps the first column of every row.
func (w *world) read(role, via, sql string) error {
	s, err := w.session(targetOf(via), role)
	if err != nil {
		return err
	}
	w.last = s.exec(sql)
	if w.last.err != nil {
		return fmt.Errorf("%s: %w", sql, w.last.err)
	}
	w.values = nil
	if len(w.last.rows) > 0 {
		for _, row := range w.last.rows[len(w.last.rows)-1] {
			w.values = append(w.values, row[0])
		}
	}
	return nil
}

func registerSteps(sc *godog.ScenarioContext, w *world) {
	via := `(directly|through the proxy|through the proxy without hmac|through its own proxy)`
	sc.Step(`^(\w+) reads (\w+)\.(\w+) of row (\d+) `+via+` as (.+)$`, w.readsColumnAs)
	sc.Step(`^every masked value (\w+) reads from (\w+) `+via+` is the documented mask of the clear value$`, w.everyValueMasked)
	sc.Step(`^(\w+) runs "(.*)" `+via+`$`, func(role, sql, v string) error {
		s, err := w.session(targetOf(v), role)
		if err != nil {
			return err
		}
		w.last = s.exec(sql)
		return nil
	})
	sc.Step(`^(\w+) runs `+via+`:$`, func(role, v string, doc *godog.DocString) error {
		s, err := w.session(targetOf(v), role)
		if err != nil {
			return err
		}
		w.last = s.exec(doc.Content)
		return nil
	})
	sc.Step(`^it succeeds with the rows "(.*)"$`, w.succeedsWith)
	sc.Step(`^it is refused with SQLSTATE 42501 and a message containing "(.*)"$`, w.refusedWith)
	sc.Step(`^nothing it returned shows a clear value$`, func() error { return w.noLeak(w.last, proxyHMAC) })
	sc.Step(`^the session of (\w+) `+via+` is still usable$`, func(role, v string) error {
		s, err := w.session(targetOf(v), role)
		if err != nil {
			return err
		}
		return usable(s)
	})

	// Protocols.
	sc.Step(`^(\w+) reads customer (\d+) in binary format through the proxy$`, w.binaryRead)
	sc.Step(`^(\w+) runs the named prepared statement "(.*)" with (\d+) through the proxy$`, w.namedPrepared)
	sc.Step(`^(\w+) fetches "(.*)" from a named portal (\d+) rows? at a time through the proxy$`, w.portal)
	sc.Step(`^(\w+) sends one pipeline through the proxy:$`, w.pipeline)
	sc.Step(`^the values are (.*)$`, w.valuesAre)
	sc.Step(`^psql as (\w+) through the proxy prints for "(.*)":$`, w.psql)

	sc.Step(`^(\w+) prepares "(.*)" as "(\w+)" `+via+`$`, func(role, sql, name, v string) error {
		s, err := w.session(targetOf(v), role)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err = s.conn.Prepare(ctx, name, sql)
		return err
	})
	sc.Step(`^the prepared statement "(\w+)" of (\w+) `+via+` gives "(.*)" for (\d+)$`, func(name, role, v, want string, arg int) error {
		s, err := w.session(targetOf(v), role)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var got *string
		if err := s.conn.QueryRow(ctx, name, arg).Scan(&got); err != nil {
			return err
		}
		if got == nil || *got != want {
			return fmt.Errorf("the statement prepared before the reload gives %s, want %q", shows(got), want)
		}
		return nil
	})

	sc.Step(`^the prepared statement "(\w+)" of (\w+) `+via+` is refused with 42501 for (\d+), and the session goes on$`, func(name, role, v string, arg int) error {
		s, err := w.session(targetOf(v), role)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var got *string
		err = s.conn.QueryRow(ctx, name, arg).Scan(&got)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			return fmt.Errorf("the statement prepared before the reload gives %s (err %v), want a 42501 refusal", shows(got), err)
		}
		var one int
		if err := s.conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
			return fmt.Errorf("the session did not go on after the refusal: %v", err)
		}
		return nil
	})

	// Reloads and start-up.
	sc.Step(`^a proxy of its own reading a copy of (\S+)$`, w.ownProxy)
	sc.Step(`^the masking file gets under (\w+):$`, w.addColumns)
	sc.Step(`^the masking file becomes:$`, func(doc *godog.DocString) error {
		return os.WriteFile(w.ownPath, []byte(doc.Content), 0o644)
	})
	sc.Step(`^the metrics of its own proxy are noted$`, func() error {
		m, err := harness.ReadMetrics(w.ownProxies["own"].HealthURL("/metrics"))
		w.before = m
		return err
	})
	sc.Step(`^within (\d+) seconds (\w+) reads (\w+)\.(\w+) of row (\d+) through its own proxy as (.+)$`, w.eventuallyReads)
	sc.Step(`^within (\d+) seconds the metric (\S+) of its own proxy rose by (\d+)$`, w.metricRose)
	sc.Step(`^its own proxy logged "(.*)"$`, func(text string) error {
		if !strings.Contains(w.ownProxies["own"].Logs(), text) {
			return fmt.Errorf("no %q in the proxy log", text)
		}
		return nil
	})
	sc.Step(`^pgproxy starts with the masking file:$`, w.startWith)
	sc.Step(`^it exits with status (\d+)$`, func(want int) error {
		if w.exited.status != want {
			return fmt.Errorf("exit status %d, want %d; output:\n%s", w.exited.status, want, w.exited.output)
		}
		return nil
	})
	sc.Step(`^its output contains "(.*)"$`, func(text string) error {
		if !strings.Contains(w.exited.output, text) {
			return fmt.Errorf("no %q in the output:\n%s", text, w.exited.output)
		}
		return nil
	})

	// Usability.
	sc.Step(`^(\w+) gets exactly what a direct connection returns for "(.*)"$`, w.sameAsDirect)
	sc.Step(`^(\w+) gets exactly what a direct connection returns for:$`, func(role string, doc *godog.DocString) error {
		return w.sameAsDirect(role, doc.Content)
	})
	sc.Step(`^"(.*)" reaches the server unchanged through the proxy$`, w.unchanged)
}

// readsColumnAs checks one value through a target against its expectation:
// "text" (quoted), NULL, the clear value, or the sha256 or hmac of the
// clear value (computed here).
func (w *world) readsColumnAs(role, table, column, id, via, want string) error {
	sql := fmt.Sprintf("SELECT %s FROM %s WHERE id = %s", column, table, id)
	if err := w.read(role, via, sql); err != nil {
		return err
	}
	if len(w.values) != 1 {
		return fmt.Errorf("%s: %d rows", sql, len(w.values))
	}
	got := w.values[0]
	clear := shared.clear.byID[parentOf(table)][id][column]
	var exp *string
	switch {
	case want == "NULL":
	case want == "the clear value":
		exp = clear
	case want == "the sha256 of the clear value", want == "the hmac of the clear value":
		mask := masking.Hash
		if strings.Contains(want, "hmac") {
			mask = masking.HMAC
		}
		exp = expectedMask(masking.Column{Mask: mask}, "text", clear)
	case strings.HasPrefix(want, `"`):
		s, err := strconv.Unquote(want)
		if err != nil {
			return err
		}
		exp = &s
	default:
		return fmt.Errorf("unknown expectation %s", want)
	}
	if !reflect.DeepEqual(got, exp) {
		return fmt.Errorf("%s %s as %s: got %s, want %s (clear %s)", sql, via, role, shows(got), shows(exp), shows(clear))
	}
	return nil
}

// parentOf is the configured table whose rows a partition or child holds.
func parentOf(table string) string {
	switch table {
	case "vip_customers":
		return "customers"
	case "payments_2023", "payments_2024":
		return "payments"
	}
	return table
}

// everyValueMasked reads every configured column of every row of a table
// and compares it with the mask computed in Go from the clear value.
func (w *world) everyValueMasked(role, table, via string) error {
	target := targetOf(via)
	cfg := shared.configs[target]
	t := cfg.Table("public", table)
	if t == nil {
		return fmt.Errorf("%s is not masked in %s", table, target)
	}
	types, err := columnTypes(table)
	if err != nil {
		return err
	}
	s, err := w.session(target, role)
	if err != nil {
		return err
	}
	checked := 0
	for _, c := range t.Columns {
		o := s.exec(fmt.Sprintf("SELECT id::text, %s FROM %s ORDER BY id", c.Name, table))
		if o.err != nil {
			return o.err
		}
		for _, row := range o.rows[0] {
			clear := shared.clear.byID[table][*row[0]][c.Name]
			exp := expectedMask(c, types[c.Name], clear)
			if !reflect.DeepEqual(row[1], exp) {
				return fmt.Errorf("%s.%s of row %s: got %s, want %s (%s of %s)", table, c.Name, *row[0], shows(row[1]), shows(exp), c.Mask, shows(clear))
			}
			checked++
		}
	}
	if checked < 10 {
		return fmt.Errorf("only %d values checked", checked)
	}
	return nil
}

// columnTypes returns text, varchar(n) or the type name of a table's
// columns.
func columnTypes(table string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, shared.pg.SuperuserDSN(harness.TestDB))
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, table)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return nil, err
		}
		out[name] = strings.Replace(typ, "character varying", "varchar", 1)
	}
	return out, rows.Err()
}

func (w *world) succeedsWith(want string) error {
	if w.last.err != nil {
		return fmt.Errorf("%s: %w", w.last.sql, w.last.err)
	}
	if got := joinRows(w.last); got != want {
		return fmt.Errorf("rows %q, want %q", got, want)
	}
	return w.noLeak(w.last, proxyHMAC)
}

// joinRows writes every result's rows as "a,b;c,d", results separated by
// " / ".
func joinRows(o *outcome) string {
	var results []string
	for _, rows := range o.rows {
		var rs []string
		for _, row := range rows {
			var vs []string
			for _, v := range row {
				if v == nil {
					vs = append(vs, "NULL")
				} else {
					vs = append(vs, *v)
				}
			}
			rs = append(rs, strings.Join(vs, ","))
		}
		results = append(results, strings.Join(rs, ";"))
	}
	return strings.Join(results, " / ")
}

func (w *world) refusedWith(text string) error {
	if !w.last.refusedByMasking() {
		return fmt.Errorf("%s: not refused by masking: %v (rows %s)", w.last.sql, w.last.err, joinRows(w.last))
	}
	var pe *pgconn.PgError
	errors.As(w.last.err, &pe)
	if !strings.Contains(pe.Message, text) {
		return fmt.Errorf("message %q does not contain %q", pe.Message, text)
	}
	return w.noLeak(w.last, proxyHMAC)
}

func (w *world) noLeak(o *outcome, config string) error {
	if found := shared.leaks[config].find(o.text()); len(found) > 0 {
		return fmt.Errorf("%s: clear values in what the client got: %s\n%s", o.sql, strings.Join(found, "; "), o.text())
	}
	return nil
}

// usable checks that a session answers after a refusal (rolling back a
// failed transaction first).
func usable(s *session) error {
	if st := s.conn.PgConn().TxStatus(); st == 'E' || st == 'T' {
		if o := s.exec("ROLLBACK"); o.err != nil {
			return fmt.Errorf("ROLLBACK: %w", o.err)
		}
	}
	o := s.exec("SELECT 'usable'")
	if o.err != nil || joinRows(o) != "usable" {
		return fmt.Errorf("the session is not usable: %v %q", o.err, joinRows(o))
	}
	return nil
}

// binaryRead reads every column of a customer with binary result formats
// through pgx and checks the decoded values.
func (w *world) binaryRead(role, id string) error {
	s, err := w.session(proxyHMAC, role)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rows, err := s.conn.Query(ctx, "SELECT id, full_name, email, phone, national_id, card_number, passport_no, date_of_birth, credit_score, city FROM customers WHERE id = $1",
		pgx.QueryResultFormats{pgx.BinaryFormatCode}, id)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		return fmt.Errorf("no row: %v", rows.Err())
	}
	for _, f := range rows.FieldDescriptions() {
		if f.Format != pgx.BinaryFormatCode {
			return fmt.Errorf("column %s came in format %d, not binary", f.Name, f.Format)
		}
	}
	var gotID int32
	var name, email, phone, nid, card, passport, city *string
	var dob *time.Time
	var score *int32
	if err := rows.Scan(&gotID, &name, &email, &phone, &nid, &card, &passport, &dob, &score, &city); err != nil {
		return fmt.Errorf("scanning binary values: %w", err)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	clear := shared.clear.byID["customers"][id]
	cfg := shared.configs[proxyHMAC].Table("public", "customers")
	types, err := columnTypes("customers")
	if err != nil {
		return err
	}
	for col, got := range map[string]*string{"full_name": name, "email": email, "phone": phone, "national_id": nid, "card_number": card, "passport_no": passport} {
		c, _ := cfg.Column(col)
		if exp := expectedMask(c, types[col], clear[col]); !reflect.DeepEqual(got, exp) {
			return fmt.Errorf("binary %s: got %s, want %s", col, shows(got), shows(exp))
		}
	}
	if dob != nil || score != nil {
		return fmt.Errorf("date_of_birth %v and credit_score %v: want NULL", dob, score)
	}
	if city == nil || *city == "" || fmt.Sprint(gotID) != id {
		return fmt.Errorf("id %d city %s: the unmasked columns are wrong", gotID, shows(city))
	}
	return nil
}

// namedPrepared prepares a named statement over pgx, runs it with one
// argument and keeps the first column.
func (w *world) namedPrepared(role, sql string, arg int) error {
	s, err := w.session(proxyHMAC, role)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.conn.Prepare(ctx, "masking_named", sql); err != nil {
		return err
	}
	defer s.conn.Deallocate(context.Background(), "masking_named")
	rows, err := s.conn.Query(ctx, "masking_named", arg)
	if err != nil {
		return err
	}
	w.values = nil
	for rows.Next() {
		var v *string
		if err := rows.Scan(&v); err != nil {
			return err
		}
		w.values = append(w.values, v)
	}
	return rows.Err()
}

// portal runs sql through Parse, Bind to a named portal and Execute with a
// row limit until the portal is done, on the wire, and keeps the first
// column of every row.
func (w *world) portal(role, sql string, per int) error {
	s, err := w.session(proxyHMAC, role)
	if err != nil {
		return err
	}
	pc := s.conn.PgConn()
	fe := pc.Frontend()
	fe.Send(&pgproto3.Parse{Name: "masking_portal_stmt", Query: sql})
	fe.Send(&pgproto3.Bind{PreparedStatement: "masking_portal_stmt", DestinationPortal: "masking_portal"})
	fe.Send(&pgproto3.Describe{ObjectType: 'P', Name: "masking_portal"})
	fe.Send(&pgproto3.Execute{Portal: "masking_portal", MaxRows: uint32(per)})
	fe.Send(&pgproto3.Flush{})
	if err := fe.Flush(); err != nil {
		return err
	}
	w.values = nil
	suspended := 0
	var text strings.Builder
	for done := false; !done; {
		msg, err := receive(pc)
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			if m.Values[0] == nil {
				w.values = append(w.values, nil)
				continue
			}
			v := string(m.Values[0])
			text.WriteString(v + "\n")
			w.values = append(w.values, &v)
		case *pgproto3.PortalSuspended:
			suspended++
			fe.Send(&pgproto3.Execute{Portal: "masking_portal", MaxRows: uint32(per)})
			fe.Send(&pgproto3.Flush{})
			if err := fe.Flush(); err != nil {
				return err
			}
		case *pgproto3.CommandComplete:
			fe.Send(&pgproto3.Close{ObjectType: 'P', Name: "masking_portal"})
			fe.Send(&pgproto3.Close{ObjectType: 'S', Name: "masking_portal_stmt"})
			fe.Send(&pgproto3.Sync{})
			if err := fe.Flush(); err != nil {
				return err
			}
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("portal: %s %s", m.Code, m.Message)
		case *pgproto3.ReadyForQuery:
			done = true
		}
	}
	if suspended == 0 {
		return errors.New("the portal was never suspended: the row limit was not used")
	}
	if found := shared.leaks[proxyHMAC].find(text.String()); len(found) > 0 {
		return fmt.Errorf("clear values through the portal: %v", found)
	}
	return nil
}

func receive(pc *pgconn.PgConn) (pgproto3.BackendMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if deadline, ok := ctx.Deadline(); ok {
		_ = pc.Conn().SetReadDeadline(deadline)
		defer pc.Conn().SetReadDeadline(time.Time{})
	}
	return pc.Frontend().Receive()
}

// pipeline sends every line of the text as one extended-protocol query in
// a single pipeline (one Sync) and keeps the first column of each result's
// first row.
func (w *world) pipeline(role string, doc *godog.DocString) error {
	s, err := w.session(proxyHMAC, role)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p := s.conn.PgConn().StartPipeline(ctx)
	var sqls []string
	for _, line := range strings.Split(doc.Content, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			sqls = append(sqls, line)
			p.SendQueryParams(line, nil, nil, nil, nil)
		}
	}
	if err := p.Sync(); err != nil {
		return err
	}
	w.values = nil
	var text strings.Builder
	for range sqls {
		res, err := p.GetResults()
		if err != nil {
			return err
		}
		rr, ok := res.(*pgconn.ResultReader)
		if !ok {
			return fmt.Errorf("pipeline result %T", res)
		}
		r := rr.Read()
		if r.Err != nil {
			return r.Err
		}
		if len(r.Rows) == 0 {
			w.values = append(w.values, nil)
			continue
		}
		v := string(r.Rows[0][0])
		if r.Rows[0][0] == nil {
			w.values = append(w.values, nil)
		} else {
			w.values = append(w.values, &v)
		}
		text.WriteString(v + "\n")
	}
	if _, err := p.GetResults(); err != nil { // the Sync
		return err
	}
	if err := p.Close(); err != nil {
		return err
	}
	if found := shared.leaks[proxyHMAC].find(text.String()); len(found) > 0 {
		return fmt.Errorf("clear values through the pipeline: %v", found)
	}
	return nil
}

// valuesAre compares the values of the last read with a comma list of
// quoted texts and NULL.
func (w *world) valuesAre(list string) error {
	var want []string
	for _, item := range strings.Split(list, ", ") {
		want = append(want, strings.TrimSpace(item))
	}
	var got []string
	for _, v := range w.values {
		got = append(got, shows(v))
	}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		return fmt.Errorf("values %s, want %s", strings.Join(got, ", "), strings.Join(want, ", "))
	}
	return nil
}

// psql runs psql -c through the shared proxy and compares its unaligned
// output.
func (w *world) psql(role, command string, doc *godog.DocString) error {
	bin, err := harness.LookBin("psql")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn := shared.proxies[proxyHMAC].DSN(role, password(role), harness.TestDB, "")
	cmd := exec.CommandContext(ctx, bin, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", command)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PGCONNECT_TIMEOUT=10"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("psql: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), strings.TrimSpace(doc.Content); got != want {
		return fmt.Errorf("psql printed:\n%s\nwant:\n%s", got, want)
	}
	if found := shared.leaks[proxyHMAC].find(string(out)); len(found) > 0 {
		return fmt.Errorf("clear values in psql's output: %v", found)
	}
	return nil
}

// ownProxy starts a proxy of the scenario's own on a copy of a testdata
// masking file.
func (w *world) ownProxy(file string) error {
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		return err
	}
	w.ownPath = filepath.Join(w.t.TempDir(), "masking.yaml")
	if err := os.WriteFile(w.ownPath, data, 0o644); err != nil {
		return err
	}
	if w.ownProxies == nil {
		w.ownProxies = map[string]*harness.Proxy{}
	}
	w.ownProxies["own"] = harness.StartProxy(w.t, proxyEnv(w.ownPath))
	return nil
}

// addColumns inserts YAML column entries at the top of a table's columns.
func (w *world) addColumns(table string, doc *godog.DocString) error {
	data, err := os.ReadFile(w.ownPath)
	if err != nil {
		return err
	}
	anchor := "  - table: " + table + "\n    columns:\n"
	i := strings.Index(string(data), anchor)
	if i < 0 {
		return fmt.Errorf("no %q in the masking file", anchor)
	}
	var add strings.Builder
	for _, line := range strings.Split(strings.TrimRight(doc.Content, "\n"), "\n") {
		add.WriteString("      " + line + "\n")
	}
	at := i + len(anchor)
	out := string(data[:at]) + add.String() + string(data[at:])
	// A new modification time even on a coarse clock: the watcher compares
	// time and size.
	if err := os.WriteFile(w.ownPath, []byte(out), 0o644); err != nil {
		return err
	}
	return nil
}

func (w *world) eventuallyReads(secs int, role, table, column, id, want string) error {
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	for {
		err := w.newSession(role, func() error {
			return w.readsColumnAs(role, table, column, id, "through its own proxy", want)
		})
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %d seconds: %w", secs, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// newSession runs f with a new session of role on the scenario's own proxy
// in place of the scenario's own (which may hold prepared statements): it
// shows what a new client sees. The scenario's session is kept.
func (w *world) newSession(role string, f func() error) error {
	key := "own/" + role
	saved := w.sessions[key]
	delete(w.sessions, key)
	err := f()
	w.sessions[key].close()
	w.sessions[key] = saved
	if saved == nil {
		delete(w.sessions, key)
	}
	return err
}

func (w *world) metricRose(secs int, series string, by float64) error {
	name, labels, err := harness.ParseSeries(series)
	if err != nil {
		return err
	}
	before, _ := w.before.Sum(name, labels)
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	for {
		m, err := harness.ReadMetrics(w.ownProxies["own"].HealthURL("/metrics"))
		if err != nil {
			return err
		}
		now, _ := m.Sum(name, labels)
		if now-before == by {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s rose by %g, want %g", series, now-before, by)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startWith runs the proxy binary with a masking file and waits for it to
// exit (it must not start).
func (w *world) startWith(doc *godog.DocString) error {
	path := filepath.Join(w.t.TempDir(), "masking.yaml")
	if err := os.WriteFile(path, []byte(doc.Content), 0o644); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, harness.BuildProxy(w.t))
	cmd.Dir = w.t.TempDir()
	listen, err := harness.FreeAddr("127.0.0.1")
	if err != nil {
		return err
	}
	health, err := harness.FreeAddr("127.0.0.1")
	if err != nil {
		return err
	}
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "LISTEN_ADDR=" + listen, "HEALTH_CHECK_ADDR=" + health}
	if v, ok := os.LookupEnv("GOCOVERDIR"); ok {
		cmd.Env = append(cmd.Env, "GOCOVERDIR="+v)
	}
	for k, v := range proxyEnv(path) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	w.exited.output, w.exited.status = string(out), 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		w.exited.status = exit.ExitCode()
	case err != nil:
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("pgproxy did not stop within a minute:\n%s", out)
	}
	return nil
}

// sameAsDirect runs sql as role directly and through the shared proxies
// and compares column names and every row.
func (w *world) sameAsDirect(role, sql string) error {
	direct, err := w.session("direct", role)
	if err != nil {
		return err
	}
	want := direct.exec(sql)
	if want.err != nil {
		return fmt.Errorf("directly: %w", want.err)
	}
	if len(want.rows) == 0 {
		return errors.New("directly: no result")
	}
	for _, target := range []string{proxyHMAC, proxyNoHMAC} {
		s, err := w.session(target, role)
		if err != nil {
			return err
		}
		got := s.exec(sql)
		if got.err != nil {
			return fmt.Errorf("through the %s proxy: %w", target, got.err)
		}
		if !reflect.DeepEqual(got.columns, want.columns) {
			return fmt.Errorf("through the %s proxy: columns %v, directly %v", target, got.columns, want.columns)
		}
		if g, d := joinRows(got), joinRows(want); g != d {
			return fmt.Errorf("through the %s proxy:\n%s\ndirectly:\n%s", target, g, d)
		}
	}
	return nil
}

// unchanged runs sql through the hmac proxy under an application_name of
// its own and finds the exact text in the server's statement log.
func (w *world) unchanged(sql string) error {
	app := fmt.Sprintf("masking-unchanged-%d", time.Now().UnixNano())
	cfg, err := connConfig(proxyHMAC, "analyst", app)
	if err != nil {
		return err
	}
	s, err := connect(cfg)
	if err != nil {
		return err
	}
	defer s.close()
	if o := s.exec(sql); o.err != nil {
		return o.err
	}
	want := "app=" + app + " LOG:  statement: " + sql + "\n"
	var logs string
	for range 100 {
		logs = shared.pg.Logs()
		if strings.Contains(logs, want) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	var mine []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "app="+app+" ") {
			mine = append(mine, l)
		}
	}
	return fmt.Errorf("the server did not receive the text unchanged; it logged:\n%s", strings.Join(mine, "\n"))
}
