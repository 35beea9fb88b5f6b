package aws

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cucumber/godog"
	"github.com/jackc/pgx/v5"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/tests/oidcissuer"
)

const (
	iamUser  = "iam_user" // the proxy's IAM database user (granted rds_iam on RDS)
	appUser  = "app_user" // an application that signs its own IAM tokens
	audience = "pgproxy-aws-e2e"
)

// shared are the servers every scenario uses: the primary PostgreSQL (fast
// node and reporter database), the replica (shunt node), the TLS files of
// the stand-ins and the proxy.
var shared struct {
	once    sync.Once
	err     error
	primary *harness.Cluster
	replica *harness.Cluster
	certs   *harness.Certs
	bin     string
}

// schema is loaded on both clusters; node names the cluster.
const schema = `
CREATE TABLE node (name text);
INSERT INTO node VALUES ('%s');
CREATE TABLE big AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g;
ANALYZE node; ANALYZE big;
GRANT SELECT ON node, big TO PUBLIC;
`

// trustIAM lets the IAM users in from the loopback without a password:
// the stand-ins have checked their tokens.
var trustIAM = []string{
	"host all " + iamUser + " 127.0.0.1/32 trust",
	"host all " + appUser + " 127.0.0.1/32 trust",
	`host all "IAM:` + iamUser + `" 127.0.0.1/32 trust`,
	`host all "IAMR:pgproxy-redshift" 127.0.0.1/32 trust`,
}

func servers(t *testing.T) error {
	shared.once.Do(func() {
		shared.bin = harness.BuildProxy(t)
		if shared.certs, shared.err = harness.GenerateCerts(filepath.Join(os.TempDir(), fmt.Sprintf("pgproxy-aws-%d", os.Getpid()))); shared.err != nil {
			return
		}
		for _, n := range []struct {
			c    **harness.Cluster
			name string
		}{{&shared.primary, "fast"}, {&shared.replica, "shunt"}} {
			c, err := harness.NewPostgres(harness.PGOptions{HBA: trustIAM})
			if err != nil {
				shared.err = err
				return
			}
			*n.c = c
			// The last two are the users Redshift's temporary credentials name.
			if shared.err = c.SuperuserExec(fmt.Sprintf(`CREATE ROLE %s LOGIN; CREATE ROLE %s LOGIN; CREATE ROLE "IAM:%s" LOGIN; `+
				`CREATE ROLE "IAMR:pgproxy-redshift" LOGIN`, iamUser, appUser, iamUser)); shared.err != nil {
				return
			}
			if shared.err = c.SuperuserExec(fmt.Sprintf(schema, n.name)); shared.err != nil {
				return
			}
		}
		shared.err = shared.primary.SuperuserExec("CREATE DATABASE ops OWNER " + iamUser)
	})
	return shared.err
}

func closeServers() {
	for _, c := range []*harness.Cluster{shared.primary, shared.replica} {
		if c != nil {
			c.Close()
		}
	}
	if shared.certs != nil {
		os.RemoveAll(filepath.Dir(shared.certs.CAFile))
	}
}

// world is one scenario's state.
type world struct {
	t    *testing.T
	dir  string
	acct *harness.AWSAccount
	sts  string
	// The RDS stand-ins: fast and reporter in front of the primary, shunt
	// in front of the replica.
	fast, shunt, reporter *harness.RDS
	redshift              *harness.RDS // in front of the primary
	redshiftAPI           string
	ecache                *harness.ElastiCache
	redisAddr, redisPass  string
	issuer                *oidcissuer.Issuer
	issuerCA              string
	webToken              string // file of the web identity token
	proxy                 *harness.Proxy
	output                string // of a proxy that refused to start
	sessions              map[string]*pgx.Conn
	refusal               error
	cleanups              []func()
}

func initScenario(t *testing.T, sc *godog.ScenarioContext) {
	w := &world{t: t, sessions: map[string]*pgx.Conn{}}
	sc.After(func(ctx context.Context, _ *godog.Scenario, err error) (context.Context, error) {
		if err != nil && w.proxy != nil {
			t.Logf("proxy log:\n%s", harness.Tail(w.proxy.Logs(), 80))
		}
		w.cleanup()
		return ctx, nil
	})
	registerSteps(sc, w)
}

func (w *world) cleanup() {
	for _, c := range w.sessions {
		c.Close(context.Background())
	}
	if w.proxy != nil {
		w.proxy.Stop()
	}
	for i := len(w.cleanups) - 1; i >= 0; i-- {
		w.cleanups[i]()
	}
}

// account makes the scenario's AWS account, its STS and the RDS stand-ins.
func (w *world) account(region string, lifetime int) error {
	if err := servers(w.t); err != nil {
		return err
	}
	w.dir = w.t.TempDir()
	w.acct = harness.NewAWSAccount(region)
	if lifetime > 0 {
		w.acct.SetLifetime(time.Duration(lifetime) * time.Second)
	}
	w.sts = harness.StartSTS(w.t, w.acct)
	w.fast = harness.StartRDS(w.t, w.acct, shared.certs, shared.primary.Addr())
	w.shunt = harness.StartRDS(w.t, w.acct, shared.certs, shared.replica.Addr())
	w.reporter = harness.StartRDS(w.t, w.acct, shared.certs, shared.primary.Addr())
	w.redshift = harness.StartRedshift(w.t, w.acct, shared.certs, shared.primary.Addr())
	w.redshiftAPI = harness.StartRedshiftAPI(w.t, w.acct)
	iss, err := oidcissuer.New(oidcissuer.Options{})
	if err != nil {
		return err
	}
	w.cleanups = append(w.cleanups, iss.Close)
	w.issuer = iss
	w.issuerCA, err = iss.WriteCAFile(w.dir)
	return err
}

// expand replaces the placeholders of a setting.
func (w *world) expand(v string) string {
	r := []string{"{ca}", shared.certs.CAFile, "{sts}", w.sts, "{webtoken}", w.webToken}
	for name, s := range map[string]*harness.RDS{"{fast}": w.fast, "{shunt}": w.shunt, "{reporter}": w.reporter, "{redshift}": w.redshift} {
		if s != nil {
			r = append(r, name, s.Addr)
		}
	}
	if w.ecache != nil {
		r = append(r, "{valkey}", w.ecache.Addr)
	}
	return strings.NewReplacer(r...).Replace(v)
}

// env is the proxy's environment: token sessions whose service account
// logs in to the fast stand-in with IAM, the account's own key in the
// default chain, STS at the stand-in; then table's settings (an empty
// value removes one).
func (w *world) env(table *godog.Table) (map[string]string, error) {
	if w.acct == nil {
		return nil, errors.New("no AWS account: make one first")
	}
	env := map[string]string{
		"PG_BACKEND_URL":           "postgres://{fast}/testdb?sslmode=verify-full",
		"PG_BACKEND_CA_PATH":       "{ca}",
		"PG_IAM_AUTH":              "true",
		"PG_IAM_USERNAME":          iamUser,
		"PG_AWS_REGION":            w.acct.Region,
		"OIDC_AUTH":                "true",
		"OIDC_DISCOVERY_URL":       w.issuer.DiscoveryURL(),
		"OIDC_CERT_PATH":           w.issuerCA,
		"OIDC_AUDIENCE":            audience,
		"OIDC_ALLOWED_DATABASES":   "testdb",
		"TLS_ENABLED":              "true",
		"TLS_CERT_PATH":            shared.certs.CertFile,
		"TLS_KEY_PATH":             shared.certs.KeyFile,
		"MAX_CONNS_PER_IP_PER_MIN": "0",
		"LOG_LEVEL":                "debug",
		"LOG_FORMAT":               "json",
		"AWS_ENDPOINT_URL_STS":     "{sts}",
		// The Redshift API stand-in serves both Redshift and Redshift Serverless.
		"AWS_ENDPOINT_URL_REDSHIFT":            w.redshiftAPI,
		"AWS_ENDPOINT_URL_REDSHIFT_SERVERLESS": w.redshiftAPI,
	}
	for k, v := range w.acct.Env() {
		env[k] = v
	}
	if table != nil {
		for _, row := range table.Rows {
			if len(row.Cells) != 2 {
				return nil, errors.New("settings: name | value")
			}
			if row.Cells[1].Value == "" {
				delete(env, row.Cells[0].Value)
			} else {
				env[row.Cells[0].Value] = row.Cells[1].Value
			}
		}
	}
	for k, v := range env {
		env[k] = w.expand(v)
	}
	return env, nil
}

func (w *world) startProxy(table *godog.Table) error {
	env, err := w.env(table)
	if err != nil {
		return err
	}
	w.proxy = harness.StartProxy(w.t, env)
	return nil
}

// refuseStart runs the proxy with table's settings and expects it to stop
// with an error within 15 s.
func (w *world) refuseStart(table *godog.Table) error {
	env, err := w.env(table)
	if err != nil {
		return err
	}
	port, _ := harness.FreeAddr("127.0.0.1")
	health, _ := harness.FreeAddr("127.0.0.1")
	env["LISTEN_ADDR"], env["HEALTH_CHECK_ADDR"] = port, health
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, shared.bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	w.output = string(out)
	if ctx.Err() != nil {
		return fmt.Errorf("the proxy did not stop within 15 s:\n%s", harness.Tail(w.output, 20))
	}
	if err == nil {
		return fmt.Errorf("the proxy exited 0:\n%s", harness.Tail(w.output, 20))
	}
	return nil
}
