package masking

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cucumber/godog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/userspace/masking"
)

// hmacKey is MASKING_HMAC_KEY of the proxies.
const hmacKey = "masking-suite-hmac-key-7f3a9c2e41"

// The proxies every scenario can use: one with testdata/masking.yaml (every
// mask type, hmac included) and one with testdata/masking_nohmac.yaml.
const (
	proxyHMAC   = "hmac"
	proxyNoHMAC = "nohmac"
)

var configFiles = map[string]string{proxyHMAC: "masking.yaml", proxyNoHMAC: "masking_nohmac.yaml"}

// shared are the servers of the test binary.
var shared struct {
	once    sync.Once
	err     error
	pg      *harness.Cluster
	proxies map[string]*harness.Proxy
	configs map[string]*masking.Config
	clear   *clearData
	leaks   map[string]*leakSet
}

// servers starts (once per test binary) the cluster with the data set and
// the shared proxies; t is the test that owns them (TestFeatures).
func servers(t *testing.T) error {
	shared.once.Do(func() {
		start := time.Now()
		shared.pg, shared.err = harness.NewPostgres(harness.PGOptions{
			// The suite's own roles log in with SCRAM over TCP.
			HBA: []string{
				"host all app_owner,analyst,support,dba_lead,masking_svc 127.0.0.0/8 scram-sha-256",
			},
			// Every statement the server receives is logged with the
			// session's application_name: "forwarded unchanged" is read
			// there.
			Conf: []string{"log_statement = 'all'", "log_line_prefix = '%m [%p] %q%u@%d app=%a '"},
		})
		if shared.err != nil {
			return
		}
		schema, err := os.ReadFile(filepath.Join("testdata", "schema.sql"))
		if err != nil {
			shared.err = err
			return
		}
		if shared.err = shared.pg.SuperuserExec(string(schema)); shared.err != nil {
			shared.err = fmt.Errorf("testdata/schema.sql: %w", shared.err)
			return
		}
		shared.configs = map[string]*masking.Config{}
		for name, file := range configFiles {
			cfg, err := masking.Load(filepath.Join("testdata", file), []byte(hmacKey))
			if err != nil {
				shared.err = err
				return
			}
			shared.configs[name] = cfg
		}
		if shared.clear, shared.err = readClear(shared.configs[proxyHMAC]); shared.err != nil {
			return
		}
		shared.leaks = map[string]*leakSet{}
		for name, cfg := range shared.configs {
			shared.leaks[name] = newLeakSet(shared.clear, cfg)
		}
		shared.proxies = map[string]*harness.Proxy{}
		for name, file := range configFiles {
			abs, err := filepath.Abs(filepath.Join("testdata", file))
			if err != nil {
				shared.err = err
				return
			}
			shared.proxies[name] = harness.StartProxy(t, proxyEnv(abs))
		}
		t.Logf("masking data set and proxies ready in %v", time.Since(start).Round(time.Millisecond))
	})
	if shared.err == nil && shared.pg != nil {
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("postgres log (last lines):\n%s", harness.Tail(shared.pg.Logs(), 60))
			}
		})
	}
	return shared.err
}

// closeServers stops the cluster (the proxies stop with their test).
func closeServers() {
	if shared.pg != nil {
		_ = shared.pg.Close()
	}
}

// proxyEnv is the environment of a masking proxy reading path.
func proxyEnv(path string) map[string]string {
	return map[string]string{
		"PG_BACKEND_URL":           shared.pg.DSN("masking_svc", "masking_svc_pw", harness.TestDB),
		"MASKING_ENABLED":          "true",
		"MASKING_CONFIG_PATH":      path,
		"MASKING_HMAC_KEY":         hmacKey,
		"LOG_FORMAT":               "json",
		"LOG_LEVEL":                "info",
		"MAX_CONNS_PER_IP_PER_MIN": "0",
	}
}

// password returns the password of one of the suite's roles.
func password(role string) string { return role + "_pw" }

// connConfig is the pgx configuration of role on a target: "direct" (the
// cluster itself) or a proxy name.
func connConfig(target, role, appName string) (*pgx.ConnConfig, error) {
	var dsn string
	switch target {
	case "direct":
		dsn = shared.pg.DSN(role, password(role), harness.TestDB)
	default:
		p := shared.proxies[target]
		if p == nil {
			return nil, fmt.Errorf("no proxy %q", target)
		}
		dsn = p.DSN(role, password(role), harness.TestDB, "")
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	if appName != "" {
		cfg.RuntimeParams["application_name"] = appName
	}
	return cfg, nil
}

// session is one client connection with the notices it received.
type session struct {
	conn    *pgx.Conn
	mu      sync.Mutex
	notices []*pgconn.Notice
	// notified are the payloads of NOTIFY messages received.
	notified []string
}

func connect(cfg *pgx.ConnConfig) (*session, error) {
	s := &session{}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		s.mu.Lock()
		s.notices = append(s.notices, n)
		s.mu.Unlock()
	}
	cfg.OnNotification = func(_ *pgconn.PgConn, n *pgconn.Notification) {
		s.mu.Lock()
		s.notified = append(s.notified, n.Channel+": "+n.Payload)
		s.mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s.conn = conn
	return s, nil
}

func (s *session) close() {
	if s != nil && s.conn != nil {
		s.conn.Close(context.Background())
	}
}

// takeNotices returns the notices (and NOTIFY payloads, as notices)
// received since the last call.
func (s *session) takeNotices() []*pgconn.Notice {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.notices
	for _, p := range s.notified {
		n = append(n, &pgconn.Notice{Severity: "NOTIFY", Message: p})
	}
	s.notices, s.notified = nil, nil
	return n
}

// outcome is what one simple Query (or COPY TO STDOUT) brought back: every
// result's column names and rows as text, the COPY data, the notices and
// the error.
type outcome struct {
	sql     string
	columns [][]string
	rows    [][][]*string
	copied  []byte
	notices []*pgconn.Notice
	err     error
}

// copyTo matches a COPY whose data comes to the client.
var copyTo = regexp.MustCompile(`(?is)^\s*COPY\b.*\bTO\s+STDOUT\b`)

// copyData separates a COPY ... FROM STDIN from the data it sends.
const copyData = "\n--data\n"

// exec runs one text as a simple Query (all its statements) and keeps all
// it returned.
func (s *session) exec(sql string) *outcome {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	o := &outcome{sql: sql}
	if copyTo.MatchString(sql) {
		var buf bytes.Buffer
		_, o.err = s.conn.PgConn().CopyTo(ctx, &buf, sql)
		o.copied = buf.Bytes()
		o.notices = s.takeNotices()
		return o
	}
	if stmt, data, ok := strings.Cut(sql, copyData); ok {
		_, o.err = s.conn.PgConn().CopyFrom(ctx, strings.NewReader(data), stmt)
		o.notices = s.takeNotices()
		return o
	}
	results, err := s.conn.PgConn().Exec(ctx, sql).ReadAll()
	for _, r := range results {
		var cols []string
		for _, f := range r.FieldDescriptions {
			cols = append(cols, f.Name)
		}
		o.columns = append(o.columns, cols)
		var rows [][]*string
		for _, row := range r.Rows {
			var vals []*string
			for _, v := range row {
				if v == nil {
					vals = append(vals, nil)
					continue
				}
				str := string(v)
				vals = append(vals, &str)
			}
			rows = append(rows, vals)
		}
		o.rows = append(o.rows, rows)
		if r.Err != nil && err == nil {
			err = r.Err
		}
	}
	o.err = err
	o.notices = s.takeNotices()
	return o
}

// text is everything the outcome carries that a client could read.
func (o *outcome) text() string {
	var b strings.Builder
	for i, cols := range o.columns {
		b.WriteString(strings.Join(cols, "|"))
		b.WriteByte('\n')
		for _, row := range o.rows[i] {
			for _, v := range row {
				if v != nil {
					b.WriteString(*v)
				}
				b.WriteByte('|')
			}
			b.WriteByte('\n')
		}
	}
	b.Write(o.copied)
	for _, n := range o.notices {
		b.WriteString(noticeText((*pgconn.PgError)(n)))
	}
	var pe *pgconn.PgError
	if errors.As(o.err, &pe) {
		b.WriteString(noticeText(pe))
	} else if o.err != nil {
		b.WriteString(o.err.Error())
	}
	return b.String()
}

// noticeText is every field of an error or notice.
func noticeText(e *pgconn.PgError) string {
	return strings.Join([]string{e.Severity, e.Code, e.Message, e.Detail, e.Hint, e.Where, e.InternalQuery,
		e.SchemaName, e.TableName, e.ColumnName, e.DataTypeName, e.ConstraintName}, "\n") + "\n"
}

// code is the SQLSTATE of the outcome's error ("" without one).
func (o *outcome) code() string {
	var pe *pgconn.PgError
	if errors.As(o.err, &pe) {
		return pe.Code
	}
	if o.err != nil {
		return "client error"
	}
	return ""
}

// refusedByMasking reports whether the outcome is the masking's refusal.
func (o *outcome) refusedByMasking() bool {
	var pe *pgconn.PgError
	return (errors.As(o.err, &pe) && pe.Code == "42501" && strings.HasPrefix(pe.Message, "pgproxy masking: ")) || refusedAtStartup(o.err)
}

// refusedAtStartup reports a connection the proxy refused for a setting
// while masking is on: chosen in its startup packet (28000), or reported by
// the server with a value masking cannot work under (42501).
func refusedAtStartup(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "28000" || pe.Code == "42501") && strings.HasPrefix(pe.Message, "pgproxy ") &&
		strings.Contains(pe.Message, "while data masking is on")
}

// clearData are the clear values of every masked column of the data set,
// read by the superuser: table (as configured, schema.name) → column →
// values.
type clearData struct {
	values map[string]map[string][]string
	// byID are the clear values by table (its name alone in the default
	// schema, else schema.name), id and column.
	byID map[string]map[string]map[string]*string
}

// tableKey names a configured table in clearData.values.
func tableKey(t masking.Table) string { return t.Schema + "." + t.Name }

// idKey names a configured table in clearData.byID.
func idKey(t masking.Table) string {
	if t.Schema == "public" {
		return t.Name
	}
	return t.Schema + "." + t.Name
}

// readClear reads the clear values of the columns cfg masks, through the
// parent tables (partitions and inheritance children included).
func readClear(cfg *masking.Config) (*clearData, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, shared.pg.SuperuserDSN(harness.TestDB))
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	d := &clearData{values: map[string]map[string][]string{}, byID: map[string]map[string]map[string]*string{}}
	for _, t := range cfg.Tables {
		d.values[tableKey(t)] = map[string][]string{}
		d.byID[idKey(t)] = map[string]map[string]*string{}
		for _, c := range t.Columns {
			rows, err := conn.Query(ctx, fmt.Sprintf("SELECT id::text, %q::text FROM %q.%q", c.Name, t.Schema, t.Name),
				pgx.QueryExecModeSimpleProtocol)
			if err != nil {
				return nil, err
			}
			for rows.Next() {
				var id string
				var v *string
				if err := rows.Scan(&id, &v); err != nil {
					rows.Close()
					return nil, err
				}
				if d.byID[idKey(t)][id] == nil {
					d.byID[idKey(t)][id] = map[string]*string{}
				}
				d.byID[idKey(t)][id][c.Name] = v
				if v != nil {
					d.values[tableKey(t)][c.Name] = append(d.values[tableKey(t)][c.Name], *v)
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, err
			}
		}
	}
	return d, nil
}

// needle is one text whose presence in what a client reads is a leak.
type needle struct {
	what string
	text string         // matched case-insensitively
	re   *regexp.Regexp // or this, for numbers
}

// leakSet is every text that shows a clear value: the values themselves,
// reversed, hex and base64 of their bytes, and their unkeyed digests (md5,
// sha224, sha256, sha384, sha512: a dictionary reverses them), except the
// sha256 that a hash mask is documented to show; with an hmac mask, the key
// and its padded forms too.
type leakSet struct{ needles []needle }

// minNeedle is the shortest text value looked for (shorter ones occur in
// innocent output); short values are checked by the mask features.
const minNeedle = 6

func newLeakSet(d *clearData, cfg *masking.Config) *leakSet {
	l := &leakSet{}
	add := func(what, text string) {
		l.needles = append(l.needles, needle{what: what, text: strings.ToLower(text)})
	}
	for _, t := range cfg.Tables {
		for _, c := range t.Columns {
			for _, v := range d.values[tableKey(t)][c.Name] {
				what := fmt.Sprintf("%s.%s %q", idKey(t), c.Name, v)
				if c.Name == "credit_score" {
					l.needles = append(l.needles, needle{what: what,
						re: regexp.MustCompile(`(^|[^0-9A-Za-z.+-])` + regexp.QuoteMeta(v) + `([^0-9A-Za-z.]|$)`)})
					continue
				}
				if len([]rune(v)) < minNeedle {
					continue
				}
				add(what, v)
				add(what+" reversed", reverse(v))
				add(what+" as hex", hex.EncodeToString([]byte(v)))
				add(what+" as base64", strings.TrimRight(base64.StdEncoding.EncodeToString([]byte(v)), "="))
				m5 := md5.Sum([]byte(v))
				add(what+" md5", hex.EncodeToString(m5[:]))
				s224 := sha256.Sum224([]byte(v))
				add(what+" sha224", hex.EncodeToString(s224[:]))
				if c.Mask != masking.Hash {
					s256 := sha256.Sum256([]byte(v))
					add(what+" sha256", hex.EncodeToString(s256[:]))
				}
				s384 := sha512.Sum384([]byte(v))
				add(what+" sha384", hex.EncodeToString(s384[:]))
				s512 := sha512.Sum512([]byte(v))
				add(what+" sha512", hex.EncodeToString(s512[:]))
			}
		}
	}
	if hasHMAC(cfg) {
		add("the hmac key", hmacKey)
		add("the hmac key as hex", hex.EncodeToString([]byte(hmacKey)))
		ipad, opad := pads([]byte(hmacKey))
		add("the hmac inner pad", hex.EncodeToString(ipad))
		add("the hmac outer pad", hex.EncodeToString(opad))
		// How PostgreSQL's node dumps (debug_print_*) write constants:
		// the bytes as signed decimals.
		for name, pad := range map[string][]byte{"inner": ipad, "outer": opad} {
			add("the hmac "+name+" pad in a node dump", signedBytes(pad[:16]))
			add("the hmac "+name+" pad as hex text in a node dump", signedBytes([]byte(hex.EncodeToString(pad))[:32]))
		}
	}
	return l
}

func hasHMAC(cfg *masking.Config) bool {
	for _, t := range cfg.Tables {
		for _, c := range t.Columns {
			if c.Mask == masking.HMAC {
				return true
			}
		}
	}
	return false
}

// pads are HMAC-SHA-256's padded keys.
func pads(key []byte) (ipad, opad []byte) {
	ipad, opad = make([]byte, sha256.BlockSize), make([]byte, sha256.BlockSize)
	copy(ipad, key)
	copy(opad, key)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	return ipad, opad
}

// signedBytes writes bytes as PostgreSQL's outDatum does: signed decimals
// separated by spaces.
func signedBytes(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprint(int8(c))
	}
	return strings.Join(parts, " ")
}

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

// find returns what of the set the text shows (sorted, distinct).
func (l *leakSet) find(text string) []string {
	lower := strings.ToLower(text)
	seen := map[string]bool{}
	for _, n := range l.needles {
		if (n.re != nil && n.re.MatchString(text)) || (n.re == nil && strings.Contains(lower, n.text)) {
			seen[n.what] = true
		}
	}
	var out []string
	for w := range seen {
		out = append(out, w)
	}
	sort.Strings(out)
	return out
}

// expectedMask is what a mask shows for a clear value (nil: NULL), computed
// in Go from the documented rules: the hash and hmac with crypto/sha256 and
// crypto/hmac.
func expectedMask(col masking.Column, typ string, clear *string) *string {
	if clear == nil {
		return nil
	}
	v := *clear
	var out string
	switch col.Mask {
	case masking.Null:
		return nil
	case masking.Full:
		if typ != "text" && !strings.HasPrefix(typ, "varchar") {
			return nil
		}
		out = masking.FullText
	case masking.Partial:
		r := []rune(v)
		if len(r) <= col.Visible {
			out = "***"
		} else {
			out = string(r[:col.Visible]) + "***"
		}
	case masking.Email:
		at := strings.IndexByte(v, '@')
		if at < 1 {
			out = masking.FullText
		} else {
			r := []rune(v)
			out = string(r[0]) + "***@" + v[strings.LastIndexByte(v, '@')+1:]
		}
	case masking.Hash:
		s := sha256.Sum256([]byte(v))
		out = hex.EncodeToString(s[:])
	case masking.HMAC:
		m := hmac.New(sha256.New, []byte(hmacKey))
		m.Write([]byte(v))
		out = hex.EncodeToString(m.Sum(nil))
	}
	if n, ok := strings.CutPrefix(typ, "varchar("); ok {
		var max int
		fmt.Sscanf(n, "%d", &max)
		if r := []rune(out); len(r) > max {
			out = string(r[:max])
		}
	}
	return &out
}

func initScenario(t *testing.T, sc *godog.ScenarioContext) {
	w := &world{t: t}
	sc.After(func(ctx context.Context, _ *godog.Scenario, err error) (context.Context, error) {
		if err != nil {
			for name, p := range w.ownProxies {
				t.Logf("proxy %s log:\n%s", name, harness.Tail(p.Logs(), 60))
			}
		}
		w.cleanup()
		return ctx, nil
	})
	registerSteps(sc, w)
	registerBypassSteps(sc, w)
	registerInferSteps(sc, w)
}

func shows(v *string) string {
	if v == nil {
		return "NULL"
	}
	return fmt.Sprintf("%q", *v)
}
