package identity

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cucumber/godog"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/tests/oidcissuer"
	"github.com/pgproxy/pgproxy/tests/oidcissuer/zitadelop"
)

// audience is the client id the proxy accepts by default (OIDC_AUDIENCE).
const audience = "pgproxy"

// zitadelSecret is the client secret of every client of the zitadel provider.
const zitadelSecret = "client-secret-for-tests"

func (w *world) registerSetupSteps(sc *godog.ScenarioContext) {
	sc.Step(`^a backend PostgreSQL cluster that accepts only TLS connections$`, w.tlsOnlyCluster)
	sc.Step(`^the PostgreSQL service account "([^"]*)" with an? (SCRAM|MD5) password$`, w.serviceAccount)
	sc.Step(`^the backend asks "([^"]*)" for (scram|md5) authentication$`, w.backendAsks)
	sc.Step(`^the databases? ((?:"[^"]*"(?:, | and )?)+) exists?$`, w.databasesExist)
	sc.Step(`^a local OIDC issuer$`, func() error { return w.localIssuer(oidcissuer.Options{}, false) })
	sc.Step(`^a local OIDC issuer that is down$`, func() error { return w.localIssuer(oidcissuer.Options{}, true) })
	sc.Step(`^a local OIDC issuer shaped like Entra ID for tenant "([^"]*)"$`, w.entraIssuer)
	sc.Step(`^the issuer comes up$`, func() error { return w.issuer.Start() })
	sc.Step(`^a zitadel OpenID provider with the client "([^"]*)" whose tokens are for audience "([^"]*)"(?: and carry email "([^"]*)")?$`, w.zitadelProvider)
	sc.Step(`^the proxy runs with token authentication$`, func() error { return w.startProxy(nil) })
	sc.Step(`^the proxy runs with token authentication and:$`, w.startProxy)
	sc.Step(`^GET (/\w+) answers (\d+)$`, w.getAnswers)
	sc.Step(`^within (\d+) seconds GET (/\w+) answers (\d+)$`, w.eventuallyGetAnswers)
	sc.Step(`^the auth failure counter for reason "([^"]*)" is (\d+)$`, w.authFailures)
	sc.Step(`^no token appears in the proxy logs$`, w.checkNoTokenInLogs)
	sc.Step(`^the proxy log says "([^"]*)"$`, w.proxyLogSays)
	sc.Step(`^the proxy log is shown$`, func() error {
		time.Sleep(500 * time.Millisecond)
		w.tb.Logf("proxy log:\n%s", harness.Tail(w.proxy.Logs(), 40))
		return nil
	})
}

// tlsOnlyCluster starts a cluster of the scenario's own with hostssl lines only, and makes it
// the backend.
func (w *world) tlsOnlyCluster() error {
	return w.guard(func() { w.pg = harness.StartPostgres(w.tb, clusterOptions(true)) })
}

// serviceAccount creates the role the proxy logs in as, with its password stored as SCRAM or
// MD5 (pg_hba asks for the matching method).
func (w *world) serviceAccount(name, kind string) error {
	enc := map[string]string{"SCRAM": "scram-sha-256", "MD5": "md5"}[kind]
	want := map[string]string{"scram-sha-256": scramAccount, "md5": md5Account}[enc]
	if name != want {
		return fmt.Errorf("pg_hba.conf of the test clusters admits %q with %s; use that name", want, kind)
	}
	w.account = name
	return w.s.ensureAccount(context.Background(), w.pg, name, enc)
}

// backendAsks checks which authentication the backend itself asks the account for.
func (w *world) backendAsks(user, method string) error {
	var tlsCfg = w.backendTLS()
	req, err := harness.ProbeAuth(context.Background(), w.pg.Addr(), user, harness.TestDB, tlsCfg)
	if err != nil {
		return err
	}
	if req.Method != method {
		return fmt.Errorf("backend asks %s for %q, want %q", user, req.Method, method)
	}
	return nil
}

var quoted = regexp.MustCompile(`"([^"]*)"`)

func (w *world) databasesExist(list string) error {
	for _, m := range quoted.FindAllStringSubmatch(list, -1) {
		if err := w.s.ensureDatabase(context.Background(), w.pg, m[1]); err != nil {
			return err
		}
	}
	return nil
}

// localIssuer starts a Keycloak-like issuer (optionally stopped again, for an outage) and
// writes its CA for OIDC_CERT_PATH.
func (w *world) localIssuer(opts oidcissuer.Options, down bool) error {
	iss, err := oidcissuer.New(opts)
	if err != nil {
		return err
	}
	w.addCleanup(iss.Close)
	if down {
		iss.Stop()
	}
	w.issuer = iss
	w.discoveryURL = iss.DiscoveryURL()
	return w.guard(func() {
		ca, err := iss.WriteCAFile(w.tb.TempDir())
		if err != nil {
			w.tb.Fatal(err)
		}
		w.issuerCA = ca
	})
}

// entraIssuer starts an issuer whose discovery document names the Entra ID v1 issuer
// https://sts.windows.net/<tenant>/, as login.microsoftonline.com/<tenant>/.well-known does.
func (w *world) entraIssuer(tenant string) error {
	return w.localIssuer(oidcissuer.Options{
		Path:           "/" + tenant,
		DocumentIssuer: oidcissuer.EntraIssuerV1(tenant),
		Algorithms:     []string{"RS256"},
		KeyAlgorithms:  []string{"RS256"},
	}, false)
}

// zitadelProvider starts the zitadel OpenID provider with one client_credentials client.
func (w *world) zitadelProvider(clientID, aud, email string) error {
	c := zitadelop.Client{ID: clientID, Secret: zitadelSecret, Audience: []string{aud}}
	if email != "" {
		c.Claims = map[string]any{"email": email}
	}
	p, err := zitadelop.New(zitadelop.Options{Clients: []zitadelop.Client{c}})
	if err != nil {
		return err
	}
	w.addCleanup(p.Close)
	w.zitadel = p
	w.discoveryURL = p.DiscoveryURL()
	return w.guard(func() {
		ca, err := p.CA().WriteFile(w.tb.TempDir())
		if err != nil {
			w.tb.Fatal(err)
		}
		w.issuerCA = ca
	})
}

// backendURL is PG_BACKEND_URL: the service account's credentials and, for a TLS cluster,
// sslmode=verify-full.
func (w *world) backendURL() string {
	u := url.URL{Scheme: "postgres", Host: w.pg.Addr(), Path: "/" + harness.TestDB,
		User: url.UserPassword(w.account, accountPass)}
	mode := "disable"
	if w.pg.Certs() != nil {
		mode = "verify-full"
	}
	u.RawQuery = "sslmode=" + mode
	return u.String()
}

// startProxy runs pgproxy with token authentication, client TLS, the scenario's issuer and
// backend, and the settings of table (name | value; an empty value removes the setting).
func (w *world) startProxy(table *godog.Table) error {
	if w.discoveryURL == "" {
		return fmt.Errorf("no issuer: start one before the proxy")
	}
	env := map[string]string{
		"PG_BACKEND_URL":           w.backendURL(),
		"OIDC_AUTH":                "true",
		"OIDC_DISCOVERY_URL":       w.discoveryURL,
		"OIDC_CERT_PATH":           w.issuerCA,
		"OIDC_AUDIENCE":            audience,
		"TLS_ENABLED":              "true",
		"TLS_CERT_PATH":            w.s.certs.CertFile,
		"TLS_KEY_PATH":             w.s.certs.KeyFile,
		"MAX_CONNS_PER_IP_PER_MIN": "0",
		"LOG_LEVEL":                "debug",
		"LOG_FORMAT":               "json",
	}
	if ca := w.pg.Certs(); ca != nil {
		env["PG_BACKEND_CA_PATH"] = ca.CAFile
	}
	if table != nil {
		for _, row := range table.Rows {
			if len(row.Cells) != 2 {
				return fmt.Errorf("settings table needs two columns: name | value")
			}
			name, value := row.Cells[0].Value, row.Cells[1].Value
			if value == "" {
				delete(env, name)
			} else {
				env[name] = value
			}
		}
	}
	w.env = env
	w.proxyStart = time.Now()
	return w.guard(func() {
		w.proxy = harness.StartProxy(w.tb, env)
		w.proxies = append(w.proxies, w.proxy)
	})
}

// get fetches path from the proxy's health server.
func (w *world) get(path string) (int, string, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(w.proxy.HealthURL(path))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func (w *world) getAnswers(path string, code int) error {
	got, body, err := w.get(path)
	if err != nil {
		return err
	}
	if got != code {
		return fmt.Errorf("GET %s = %d (%s), want %d", path, got, strings.TrimSpace(body), code)
	}
	return nil
}

func (w *world) eventuallyGetAnswers(secs int, path string, code int) error {
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	for {
		err := w.getAnswers(path, code)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %d s: %w", secs, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// authFailureCount reads pgproxy_auth_failures_total{reason} from /metrics (0 when absent).
func (w *world) authFailureCount(reason string) (int, error) {
	code, body, err := w.get("/metrics")
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics = %d", code)
	}
	prefix := `pgproxy_auth_failures_total{reason="` + reason + `"} `
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f), err
		}
	}
	return 0, nil
}

func (w *world) authFailures(reason string, want int) error {
	got, err := w.authFailureCount(reason)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("pgproxy_auth_failures_total{reason=%q} = %d, want %d", reason, got, want)
	}
	return nil
}

func (w *world) proxyLogSays(text string) error {
	if !strings.Contains(w.proxy.Logs(), text) {
		return fmt.Errorf("proxy log does not contain %q:\n%s", text, harness.Tail(w.proxy.Logs(), 30))
	}
	return nil
}
