package identity

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/cucumber/godog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/tests/oidcissuer"
)

// clientAppName is the application_name clients ask for; the proxy must ignore it.
const clientAppName = "spoofed-by-client"

// clientUser is the user name clients send; token logins do not use it.
const clientUser = "alice"

func (w *world) registerLoginSteps(sc *godog.ScenarioContext) {
	sc.Step(`^a Keycloak token for "([^"]*)"$`, func(email string) error { return w.keycloakToken(email, nil) })
	sc.Step(`^a Keycloak token for "([^"]*)" with:$`, w.keycloakToken)
	sc.Step(`^an Entra ID token for "([^"]*)" in tenant "([^"]*)" for audience "([^"]*)"(?: with app role "([^"]*)")?$`, w.entraToken)
	sc.Step(`^a token from the zitadel provider through the client_credentials grant as "([^"]*)"$`, w.zitadelToken)
	sc.Step(`^(psql|pgx|node-postgres) connects with the token, asking for application_name "([^"]*)", and runs "(.*)"$`, w.connectAndRun)
	sc.Step(`^pgx connects with the token$`, func() error { return w.pgxConnect(harness.TestDB, "verify-full") })
	sc.Step(`^pgx connects with the token to database "([^"]*)"$`, func(db string) error { return w.pgxConnect(db, "verify-full") })
	sc.Step(`^pgx connects with the password "([^"]*)"$`, func(pw string) error {
		w.present(pw)
		return w.pgxConnect(harness.TestDB, "verify-full")
	})
	sc.Step(`^pgx connects with the token without TLS$`, func() error { return w.pgxConnect(harness.TestDB, "disable") })
	sc.Step(`^psql connects with the token and runs "(.*)"$`, func(sql string) error { return w.connectAndRun("psql", clientAppName, sql) })
	sc.Step(`^the login succeeds$`, w.loginSucceeds)
	sc.Step(`^the login is refused with SQLSTATE (\w+) and a message containing "(.*)"$`, w.loginRefused)
	sc.Step(`^the result is "(.*)"$`, w.resultIs)
	sc.Step(`^a superuser sees the session in pg_stat_activity as user "([^"]*)" with application_name "([^"]*)"$`, w.auditSession)
}

// backendTLS is the client TLS configuration for the backend cluster, nil without TLS.
func (w *world) backendTLS() *tls.Config {
	c := w.pg.Certs()
	if c == nil {
		return nil
	}
	cfg, err := c.ClientTLSConfig("127.0.0.1")
	if err != nil {
		return nil
	}
	return cfg
}

// present makes tok the token of the next login and remembers it for the log check.
func (w *world) present(tok string) {
	w.token = tok
	w.tokens = append(w.tokens, tok)
}

// keycloakToken mints a Keycloak-shaped access token for email from the local issuer. The
// optional table (attribute | value) changes it:
//
//	client       azp, also an audience (default pgproxy)
//	realm roles  comma list for realm_access.roles
//	client roles comma list for resource_access.<client>.roles
//	groups       comma list for groups
//	expires in   Go duration relative to now (negative: already expired)
//	algorithm    RS256 (default) or ES256
//	signature    valid, unknown key, wrong key, none, HS256 with the public key
//	padded to    total token length in bytes (a filler claim)
func (w *world) keycloakToken(email string, table *godog.Table) error {
	if w.issuer == nil {
		return errors.New("no local issuer")
	}
	user := oidcissuer.KeycloakUser{
		Username:   strings.Split(email, "@")[0],
		Email:      email,
		ClientID:   audience,
		Audience:   []string{"account"},
		RealmRoles: []string{"offline_access", "default-roles-test"},
	}
	opts := oidcissuer.IssueOptions{}
	padTo := 0
	if table != nil {
		for _, row := range table.Rows {
			if len(row.Cells) != 2 {
				return errors.New("token table needs two columns: attribute | value")
			}
			k, v := row.Cells[0].Value, row.Cells[1].Value
			switch k {
			case "client":
				user.ClientID = v
			case "realm roles":
				user.RealmRoles = splitComma(v)
			case "client roles":
				user.ClientRoles = map[string][]string{user.ClientID: splitComma(v)}
			case "groups":
				user.Groups = splitComma(v)
			case "expires in":
				d, err := time.ParseDuration(v)
				if err != nil {
					return err
				}
				opts.ExpiresIn = d
			case "algorithm":
				opts.Alg = v
			case "signature":
				mode, ok := map[string]oidcissuer.SignMode{
					"valid": oidcissuer.SignValid, "unknown key": oidcissuer.SignUnknownKey,
					"wrong key": oidcissuer.SignWrongKey, "none": oidcissuer.SignNone,
					"HS256 with the public key": oidcissuer.SignHMACPublicKey,
				}[v]
				if !ok {
					return fmt.Errorf("unknown signature %q", v)
				}
				opts.Mode = mode
			case "padded to":
				n, err := strconv.Atoi(v)
				if err != nil {
					return err
				}
				padTo = n
			default:
				return fmt.Errorf("unknown token attribute %q", k)
			}
		}
	}
	claims := oidcissuer.KeycloakClaims(user)
	tok, err := w.issuer.Issue(claims, opts)
	if err != nil {
		return err
	}
	if padTo > 0 {
		if tok, err = w.padToken(claims, opts, tok, padTo); err != nil {
			return err
		}
	}
	w.present(tok)
	return nil
}

// padToken reissues tok with a filler claim so that it is exactly n bytes long (within the
// granularity of base64, which the loop absorbs).
func (w *world) padToken(claims map[string]any, opts oidcissuer.IssueOptions, tok string, n int) (string, error) {
	pad := 0
	for range 20 {
		if len(tok) == n {
			return tok, nil
		}
		pad += (n - len(tok)) * 3 / 4
		if (n-len(tok))*3/4 == 0 {
			pad += map[bool]int{true: 1, false: -1}[len(tok) < n]
		}
		if pad < 0 {
			pad = 0
		}
		c := make(map[string]any, len(claims)+1)
		for k, v := range claims {
			c[k] = v
		}
		c["pad"] = strings.Repeat("x", pad)
		var err error
		if tok, err = w.issuer.Issue(c, opts); err != nil {
			return "", err
		}
	}
	if diff := len(tok) - n; diff < -4 || diff > 4 {
		return "", fmt.Errorf("could not pad the token to %d bytes (got %d)", n, len(tok))
	}
	return tok, nil
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// entraToken mints an Entra ID v1 access token (iss https://sts.windows.net/<tenant>/).
func (w *world) entraToken(upn, tenant, aud, role string) error {
	u := oidcissuer.EntraUser{TenantID: tenant, UPN: upn, AppID: "0f1e2d3c-0000-4000-8000-00000000c11e", Audience: aud}
	if role != "" {
		u.Roles = []string{role}
	}
	tok, err := w.issuer.Issue(oidcissuer.EntraClaims(u), oidcissuer.IssueOptions{})
	if err != nil {
		return err
	}
	w.present(tok)
	return nil
}

// zitadelToken runs the client_credentials grant against the zitadel provider.
func (w *world) zitadelToken(clientID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	tok, err := w.zitadel.ClientCredentialsToken(ctx, clientID, zitadelSecret)
	if err != nil {
		return err
	}
	w.present(tok)
	return nil
}

// loginTimeout is how long a pgx client waits for a login. It is longer than the STARTUP_TIMEOUT
// of any scenario: a login whose key id is unknown waits for the next key download, up to
// STARTUP_TIMEOUT, and the proxy's answer must arrive before the client gives up.
const loginTimeout = 30 * time.Second

// pgxConfig is a pgx configuration for the proxy with the token as the password and the
// client's own application_name.
func (w *world) pgxConfig(db, sslmode string) (*pgx.ConnConfig, error) {
	dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=%s sslrootcert=%s connect_timeout=%d",
		w.proxy.Port(), clientUser, db, sslmode, w.s.certs.CAFile, int(loginTimeout.Seconds()))
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.Password = w.token
	cfg.RuntimeParams["application_name"] = clientAppName
	return cfg, nil
}

// login opens a pgx session with the current token; the error is returned, not recorded.
func (w *world) login(db, sslmode string) (*pgx.Conn, error) {
	cfg, err := w.pgxConfig(db, sslmode)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	return pgx.ConnectConfig(ctx, cfg)
}

// pgxConnect logs in and keeps the session (closing an earlier one); the outcome is checked by
// "the login succeeds" or "the login is refused …".
func (w *world) pgxConnect(db, sslmode string) error {
	if w.conn != nil {
		_ = w.conn.Close(context.Background())
		w.conn = nil
	}
	w.conn, w.connErr = w.login(db, sslmode)
	if w.connErr == nil {
		w.acceptedAt = time.Now()
		if w.floodDone != nil {
			w.tb.Logf("login accepted while %d of %d logins with unknown keys were still running",
				w.floodLeft.Load(), len(w.floodTokens))
		}
	}
	return nil
}

func (w *world) loginSucceeds() error {
	if w.connErr != nil {
		return fmt.Errorf("login failed: %w", w.connErr)
	}
	return nil
}

// loginRefused checks the SQLSTATE and message of the refusal, and that the message does not
// carry the token or any part of it.
func (w *world) loginRefused(code, text string) error {
	if w.connErr == nil {
		return errors.New("login succeeded, want a refusal")
	}
	return checkRefusal(w.connErr, w.token, code, text)
}

// checkRefusal checks that err is a server error with code whose message contains text, and
// that none of its fields carries tok or a part of it.
func checkRefusal(err error, tok, code, text string) error {
	text = strings.ReplaceAll(text, `\"`, `"`)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return fmt.Errorf("refusal is not a server error: %v", err)
	}
	if pe.Code != code {
		return fmt.Errorf("SQLSTATE %s (%s), want %s", pe.Code, pe.Message, code)
	}
	if !strings.Contains(pe.Message, text) {
		return fmt.Errorf("message %q does not contain %q", pe.Message, text)
	}
	for _, part := range []string{pe.Message, pe.Detail, pe.Hint} {
		for _, needle := range tokenNeedles(tok) {
			if strings.Contains(part, needle) {
				return fmt.Errorf("refusal echoes the token: %q", part)
			}
		}
	}
	return nil
}

// connectAndRun logs in with the named client, asking for appName, runs sql and records the
// rows in w.result.
func (w *world) connectAndRun(client, appName, sql string) error {
	var err error
	switch client {
	case "psql":
		w.result, err = w.psql(appName, sql)
	case "pgx":
		w.result, err = w.pgxRun(appName, sql)
	case "node-postgres":
		w.result, err = w.nodeRun(appName, sql)
	}
	return err
}

// psql runs psql with the token in PGPASSWORD and sslmode=verify-full against the proxy CA.
func (w *world) psql(appName, sql string) (string, error) {
	bin, err := harness.LookBin("psql")
	if err != nil {
		return "", godog.ErrSkip
	}
	conninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=verify-full sslrootcert=%s",
		w.proxy.Port(), clientUser, harness.TestDB, w.s.certs.CAFile)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql, conninfo)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PGPASSWORD=" + w.token, "PGAPPNAME=" + appName,
		"PGCONNECT_TIMEOUT=10", "HOME=" + os.TempDir()}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("psql: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// pgxRun logs in with pgx, asking for appName, and runs sql.
func (w *world) pgxRun(appName, sql string) (string, error) {
	cfg, err := w.pgxConfig(harness.TestDB, "verify-full")
	if err != nil {
		return "", err
	}
	cfg.RuntimeParams["application_name"] = appName
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	return queryRows(ctx, conn, sql)
}

// nodeRun logs in with node-postgres (tests/node), with the token in the URL.
func (w *world) nodeRun(appName, sql string) (string, error) {
	u := url.URL{Scheme: "postgres", Host: w.proxy.Addr(), Path: "/" + harness.TestDB,
		User: url.UserPassword(clientUser, w.token)}
	q := url.Values{}
	q.Set("sslmode", "verify-full")
	q.Set("sslrootcert", w.s.certs.CAFile)
	q.Set("application_name", appName)
	u.RawQuery = q.Encode()
	var res harness.NodeResult
	if err := w.guard(func() { res = harness.NodeQuery(w.tb, u.String(), sql) }); err != nil {
		return "", err
	}
	if !res.OK {
		return "", fmt.Errorf("node-postgres: %s", res)
	}
	var rows []string
	for _, r := range res.Results[0].Rows {
		var cols []string
		for _, f := range res.Results[0].Fields {
			cols = append(cols, fmt.Sprint(r[f]))
		}
		rows = append(rows, strings.Join(cols, "|"))
	}
	return strings.Join(rows, "\n"), nil
}

// queryRows runs sql with the simple protocol and renders the rows.
func queryRows(ctx context.Context, conn *pgx.Conn, sql string, args ...any) (string, error) {
	mode := pgx.QueryExecModeSimpleProtocol
	if len(args) > 0 {
		mode = pgx.QueryExecModeCacheStatement
	}
	rows, err := conn.Query(ctx, sql, append([]any{mode}, args...)...)
	if err != nil {
		return "", err
	}
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			rows.Close()
			return "", err
		}
		cols := make([]string, len(vals))
		for i, v := range vals {
			cols[i] = fmt.Sprint(v)
		}
		out = append(out, strings.Join(cols, "|"))
	}
	rows.Close()
	return strings.Join(out, "\n"), rows.Err()
}

func (w *world) resultIs(want string) error {
	if w.result != want {
		return fmt.Errorf("result %q, want %q", w.result, want)
	}
	return nil
}

// auditSession looks up the session's backend process in pg_stat_activity as the superuser.
func (w *world) auditSession(user, appName string) error {
	if w.conn == nil {
		return errors.New("no open session")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var pid int32
	if err := w.conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		return err
	}
	su, err := superuser(ctx, w.pg, harness.TestDB)
	if err != nil {
		return err
	}
	defer su.Close(context.Background())
	var gotUser, gotApp string
	err = su.QueryRow(ctx, "SELECT usename, application_name FROM pg_stat_activity WHERE pid = $1", pid).Scan(&gotUser, &gotApp)
	if err != nil {
		return fmt.Errorf("pg_stat_activity, pid %d: %w", pid, err)
	}
	if gotUser != user || gotApp != appName {
		return fmt.Errorf("pg_stat_activity shows %s / %q, want %s / %q", gotUser, gotApp, user, appName)
	}
	return nil
}
