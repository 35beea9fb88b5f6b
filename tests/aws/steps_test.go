package aws

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cucumber/godog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/valkey-io/valkey-go"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/tests/oidcissuer"
	"github.com/pgproxy/pgproxy/userspace/awsiam"
)

func registerSteps(sc *godog.ScenarioContext, w *world) {
	sc.Step(`^an AWS account in "([^"]+)"(?: whose STS credentials last (\d+) seconds)?$`, func(region, secs string) error {
		n, _ := strconv.Atoi(secs)
		return w.account(region, n)
	})
	sc.Step(`^the role "([^"]+)" may be assumed(?: with the external ID "([^"]+)")?$`, func(arn, ext string) error {
		w.acct.AllowRole(arn, ext)
		return nil
	})
	sc.Step(`^the role "([^"]+)" may be assumed with a web identity token$`, w.webIdentity)
	sc.Step(`^an ElastiCache stand-in for the cache "([^"]+)" and the IAM user "([^"]+)"$`, w.elastiCache)
	sc.Step(`^the proxy runs with RDS IAM$`, func() error { return w.startProxy(nil) })
	sc.Step(`^the proxy runs with RDS IAM and$`, w.startProxy)
	sc.Step(`^the proxy refuses to start with$`, w.refuseStart)
	sc.Step(`^its error names "([^"]+)"$`, func(s string) error {
		if !strings.Contains(w.output, s) {
			return fmt.Errorf("the output does not name %q:\n%s", s, harness.Tail(w.output, 10))
		}
		return nil
	})
	sc.Step(`^token user "([^"]+)" opens session "(\w+)"$`, func(user, name string) error {
		conn, err := w.tokenSession(user)
		if err != nil {
			return err
		}
		w.sessions[name] = conn
		return nil
	})
	sc.Step(`^"(\w+)" opens session "(\w+)" with an RDS IAM token of its own$`, w.ownTokenSession)
	sc.Step(`^a new token session is refused with SQLSTATE (\w+) within (\d+) seconds$`, w.refusedSession)
	sc.Step(`^the refusal's (message|hint) mentions "([^"]+)"$`, func(f, s string) error { return w.refusalMentions(f, s, true) })
	sc.Step(`^the refusal's (message|hint) does not mention "([^"]+)"$`, func(f, s string) error { return w.refusalMentions(f, s, false) })
	sc.Step(`^session "(\w+)" runs "(.*)" and gets "(.*)"$`, w.runs)
	sc.Step(`^the (fast|shunt|reporter|redshift) stand-in passed a login of "([^"]+)" signed by (the account's own key|the role "[^"]+")$`, w.passedLogin)
	sc.Step(`^the (fast|shunt|reporter|redshift) stand-in refused a login of "([^"]+)"$`, w.refusedLogin)
	sc.Step(`^the Redshift cluster "([^"]+)" exists$`, func(id string) error { w.acct.AllowRedshiftCluster(id); return nil })
	sc.Step(`^the Redshift Serverless workgroup "([^"]+)" exists$`, func(n string) error { w.acct.AllowRedshiftWorkgroup(n); return nil })
	sc.Step(`^Redshift database credentials last (\d+) seconds$`, func(n int) error {
		w.acct.SetDBCredentialLifetime(time.Duration(n) * time.Second)
		return nil
	})
	sc.Step(`^the Redshift database credentials handed out so far are revoked$`, func() error { w.acct.RevokeDBCredentials(); return nil })
	sc.Step(`^the Redshift API handed out (\d+) database credentials? with (GetClusterCredentials|GetCredentials)$`, w.dbCredentials)
	sc.Step(`^the fast stand-in passed logins signed by (\d+) different keys$`, w.distinctKeys)
	sc.Step(`^STS was asked to (AssumeRole|AssumeRoleWithWebIdentity) "([^"]+)"(?: with the external ID "([^"]*)" and the session name "([^"]+)")?$`, w.stsAsked)
	sc.Step(`^STS is down$`, func() error { w.acct.SetSTSDown(true); return nil })
	sc.Step(`^STS is up again$`, func() error { w.acct.SetSTSDown(false); return nil })
	sc.Step(`^(\d+) seconds pass$`, func(n int) error { time.Sleep(time.Duration(n) * time.Second); return nil })
	sc.Step(`^within (\d+) seconds the metric (\S+) is (at least )?(\d+)$`, w.metric)
	sc.Step(`^the metric (\S+) is (\d+)$`, func(series, v string) error { return w.metric(0, series, "", v) })
	sc.Step(`^the proxy's logs mention "([^"]+)"$`, func(s string) error {
		if !strings.Contains(w.proxy.Logs(), s) {
			return fmt.Errorf("the proxy's logs do not mention %q", s)
		}
		return nil
	})
	sc.Step(`^the proxy's logs hold no IAM token and no AWS secret$`, w.noSecrets)
	sc.Step(`^within (\d+) seconds the reporter database holds an issue$`, w.reporterIssue)
	sc.Step(`^within (\d+) seconds a live Valkey connection authenticates again with a newer key$`, w.reauth)
	sc.Step(`^within (\d+) seconds redis holds a decision$`, w.redisDecision)
	sc.Step(`^the ElastiCache stand-in refused a token$`, func() error {
		for _, a := range w.ecache.Auths() {
			if a.Err != nil {
				return nil
			}
		}
		return fmt.Errorf("no refused token: %+v", w.ecache.Auths())
	})
}

func (w *world) webIdentity(arn string) error {
	tok := "eyJhbGciOiJSUzI1NiJ9.irsa-projected-token." + strconv.FormatInt(time.Now().UnixNano(), 36)
	w.webToken = filepath.Join(w.dir, "web-identity-token")
	if err := os.WriteFile(w.webToken, []byte(tok), 0o600); err != nil {
		return err
	}
	w.acct.AllowRole(arn, "")
	w.acct.AllowWebIdentity(tok)
	return nil
}

func (w *world) elastiCache(name, user string) error {
	w.redisPass = "upstream-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	r := harness.StartRedisWith(w.t, harness.RedisOptions{Args: []string{
		"--user", user, "on", ">" + w.redisPass, "~*", "&*", "+@all", "--user", "default", "off"}})
	w.cleanups = append(w.cleanups, func() { _ = r.Stop() })
	w.redisAddr = r.Addr
	w.ecache = harness.StartElastiCache(w.t, w.acct, shared.certs, harness.ElastiCacheOptions{
		CacheName: name, User: user, Upstream: r.Addr, UpstreamPassword: w.redisPass})
	return nil
}

func (w *world) connect(user, password string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(w.proxy.DSN(user, password, "testdb", "sslmode=require"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return pgx.ConnectConfig(ctx, cfg)
}

func (w *world) tokenSession(user string) (*pgx.Conn, error) {
	claims := oidcissuer.KeycloakClaims(oidcissuer.KeycloakUser{Email: user, ClientID: audience})
	tok, err := w.issuer.Issue(claims, oidcissuer.IssueOptions{})
	if err != nil {
		return nil, err
	}
	return w.connect(user, tok)
}

// ownTokenSession logs in through the proxy (passthrough) with a token the
// client signed itself for the fast stand-in, as an application using RDS
// IAM does.
func (w *world) ownTokenSession(user, name string) error {
	tok, err := awsiam.RDSToken(context.Background(), staticKey(w.acct.Own), w.fast.Addr, w.acct.Region, user)
	if err != nil {
		return err
	}
	conn, err := w.connect(user, tok)
	if err != nil {
		return err
	}
	w.sessions[name] = conn
	return nil
}

func (w *world) refusedSession(code string, secs int) error {
	start := time.Now()
	conn, err := w.tokenSession("refused@example.com")
	took := time.Since(start)
	if err == nil {
		conn.Close(context.Background())
		return errors.New("the session opened")
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return fmt.Errorf("refused without an ErrorResponse: %v", err)
	}
	w.refusal = pe
	if pe.Code != code {
		return fmt.Errorf("refused with %s (%s), want %s", pe.Code, pe.Message, code)
	}
	if took > time.Duration(secs)*time.Second {
		return fmt.Errorf("refused after %v, want within %ds", took.Round(time.Millisecond), secs)
	}
	return nil
}

func (w *world) refusalMentions(field, s string, want bool) error {
	var pe *pgconn.PgError
	if !errors.As(w.refusal, &pe) {
		return errors.New("no refusal")
	}
	got := pe.Message
	if field == "hint" {
		got = pe.Hint
	}
	if strings.Contains(got, s) != want {
		return fmt.Errorf("the refusal's %s %q: mentions %q is %v", field, got, s, !want)
	}
	return nil
}

func (w *world) runs(name, sql, want string) error {
	conn := w.sessions[name]
	if conn == nil {
		return fmt.Errorf("no session %q", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if rows.Err() != nil {
			return rows.Err()
		}
		return errors.New("no row")
	}
	vals, err := rows.Values()
	if err != nil {
		return err
	}
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = fmt.Sprint(v)
	}
	if got := strings.Join(parts, "|"); got != want {
		return fmt.Errorf("got %q, want %q", got, want)
	}
	return nil
}

func (w *world) standIn(which string) *harness.RDS {
	return map[string]*harness.RDS{"fast": w.fast, "shunt": w.shunt, "reporter": w.reporter, "redshift": w.redshift}[which]
}

func (w *world) passedLogin(which, user, signer string) error {
	logins := w.standIn(which).Logins()
	for _, l := range logins {
		if l.Err != nil || l.User != user {
			continue
		}
		k, _ := w.acct.Lookup(l.Key)
		if signer == "the account's own key" && k.ID == w.acct.Own.ID {
			return nil
		}
		if strings.HasPrefix(signer, "the role ") && k.Role == strings.Trim(strings.TrimPrefix(signer, "the role "), `"`) {
			return nil
		}
	}
	return fmt.Errorf("no login of %s signed by %s passed the %s stand-in: %+v", user, signer, which, logins)
}

func (w *world) refusedLogin(which, user string) error {
	logins := w.standIn(which).Logins()
	for _, l := range logins {
		if l.Err != nil && l.User == user {
			return nil
		}
	}
	return fmt.Errorf("no refused login of %s at the %s stand-in: %+v", user, which, logins)
}

func (w *world) distinctKeys(n int) error {
	keys := map[string]bool{}
	for _, l := range w.fast.Logins() {
		if l.Err == nil {
			keys[l.Key] = true
		}
	}
	if len(keys) != n {
		return fmt.Errorf("passed logins signed by %d keys, want %d: %+v", len(keys), n, w.fast.Logins())
	}
	return nil
}

func (w *world) stsAsked(action, arn, ext, session string) error {
	calls := w.acct.STSCalls()
	for _, c := range calls {
		if c.Action == action && c.RoleARN == arn && c.Issued != "" && (session == "" || c.ExternalID == ext && c.SessionName == session) {
			return nil
		}
	}
	return fmt.Errorf("STS was not asked to %s %s (external ID %q, session %q): %+v", action, arn, ext, session, calls)
}

func (w *world) metric(secs int, series, atLeast, value string) error {
	want, _ := strconv.ParseFloat(value, 64)
	name, labels, err := harness.ParseSeries(series)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	var got float64
	for {
		m, err := harness.ReadMetrics(w.proxy.HealthURL("/metrics"))
		if err != nil {
			return err
		}
		var ok bool
		got, ok = m.Sum(name, labels)
		if ok && (got == want || atLeast != "" && got >= want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is %v (present %v), want %s%s", series, got, ok, atLeast, value)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// noSecrets checks the proxy's output for any part of a token (its
// signature or credential parameters) and for every secret the account
// knows.
func (w *world) noSecrets() error {
	logs := w.proxy.Logs()
	for _, s := range []string{"X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "Amz-Signature"} {
		if strings.Contains(logs, s) {
			return fmt.Errorf("the proxy's logs hold %s", s)
		}
	}
	for _, c := range w.acct.STSCalls() {
		if k, ok := w.acct.Lookup(c.Issued); ok && (strings.Contains(logs, k.Secret) || strings.Contains(logs, k.Token)) {
			return fmt.Errorf("the proxy's logs hold the secret of %s", k.ID)
		}
	}
	for _, c := range w.acct.DBCredentials() {
		if strings.Contains(logs, c.Password) {
			return fmt.Errorf("the proxy's logs hold a Redshift temporary password of %s", c.User)
		}
	}
	if strings.Contains(logs, w.acct.Own.Secret) {
		return errors.New("the proxy's logs hold the account's secret key")
	}
	return nil
}

func (w *world) reporterIssue(secs int) error {
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	for {
		n, err := countIssues()
		if err == nil && n > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no issue in the reporter database after %ds (%v)", secs, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func (w *world) reauth(secs int) error {
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	for {
		first := map[int]string{}
		for _, a := range w.ecache.Auths() {
			if a.Err != nil {
				continue
			}
			if k, ok := first[a.Conn]; !ok {
				first[a.Conn] = a.Key
			} else if k != a.Key && a.Command == "AUTH" {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no live connection authenticated again with a newer key in %ds: %+v", secs, w.ecache.Auths())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func (w *world) redisDecision(secs int) error {
	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{w.redisAddr}, Username: w.ecache.User(),
		Password: w.redisPass, DisableCache: true})
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		n, err := c.Do(ctx, c.B().Dbsize().Build()).AsInt64()
		cancel()
		if err == nil && n > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis holds %d keys after %ds (%v)", n, secs, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func countIssues() (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, shared.primary.SuperuserDSN("ops"))
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var n int64
	err = conn.QueryRow(ctx, "SELECT count(*) FROM pgproxy.query_issues").Scan(&n)
	return n, err
}

func (w *world) dbCredentials(n int, action string) error {
	var got []harness.DBCredential
	for _, c := range w.acct.DBCredentials() {
		if c.Action == action {
			got = append(got, c)
		}
	}
	if len(got) != n {
		return fmt.Errorf("%d database credentials handed out with %s, want %d: %+v", len(got), action, n, got)
	}
	return nil
}
