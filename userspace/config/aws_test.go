package config

import (
	"strings"
	"testing"
)

func TestIAMRefusals(t *testing.T) {
	good := map[string]string{
		"PG_BACKEND_URL":  "postgres://db.rds.amazonaws.com/app?sslmode=verify-full",
		"PG_IAM_AUTH":     "true",
		"PG_IAM_USERNAME": "pgproxy_iam",
		"PG_AWS_REGION":   "eu-west-1",
	}
	with := func(kv map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range good {
			out[k] = v
		}
		for k, v := range kv {
			out[k] = v
		}
		return out
	}
	cases := []struct {
		name string
		env  map[string]string
		want string // in the error
	}{
		{"no user", with(map[string]string{"PG_IAM_USERNAME": ""}), "PG_IAM_USERNAME is required"},
		{"no region", with(map[string]string{"PG_AWS_REGION": ""}), "PG_AWS_REGION is required"},
		{"password in the URL", with(map[string]string{"PG_BACKEND_URL": "postgres://pgproxy_iam:pw@db/app?sslmode=verify-full"}), "PG_IAM_AUTH=true with a password"},
		{"sslmode require", with(map[string]string{"PG_BACKEND_URL": "postgres://db/app?sslmode=require"}), "verify-full"},
		{"sslmode prefer (the default)", with(map[string]string{"PG_BACKEND_URL": "postgres://db/app"}), `not "prefer"`},
		{"two users", with(map[string]string{"PG_BACKEND_URL": "postgres://other@db/app?sslmode=verify-full"}), "differs from PG_BACKEND_URL's user"},
		{"shunt in plaintext", with(map[string]string{"SHUNT_NODE_URL": "postgres://replica/app?sslmode=disable"}), "SHUNT_NODE_URL has sslmode"},
		{"reporter in plaintext", with(map[string]string{"REPORTER_DB_URL": "postgres://rep@reporter/app?sslmode=disable"}), "REPORTER_DB_URL has sslmode"},
		{"role ARN", with(map[string]string{"PG_IAM_ROLE_ARN": "pgproxy-role"}), "PG_IAM_ROLE_ARN"},
		{"session name", with(map[string]string{"PG_IAM_SESSION_NAME": "x"}), "PG_IAM_SESSION_NAME"},
		{"role without IAM", map[string]string{"PG_BACKEND_URL": "postgres://u:p@db/app", "PG_IAM_ROLE_ARN": "arn:aws:iam::1:role/r"}, "needs PG_IAM_AUTH=true"},
		{"sslmode verify-ca", with(map[string]string{"PG_BACKEND_URL": "postgres://db/app?sslmode=verify-ca"}), `not "verify-ca"`},
		{"sslmode twice", with(map[string]string{"PG_BACKEND_URL": "postgres://db/app?sslmode=verify-full&sslmode=disable"}), "gives sslmode 2 times"},
		{"reporter sslmode twice", with(map[string]string{"REPORTER_DB_URL": "postgres://rep@r/ops?sslmode=verify-full&sslmode=disable"}), "REPORTER_DB_URL gives sslmode 2 times"},
		{"external ID without role", with(map[string]string{"PG_IAM_EXTERNAL_ID": "x"}), "PG_IAM_EXTERNAL_ID is set without a role"},
		{"session name with a slash", with(map[string]string{"PG_IAM_SESSION_NAME": "pg/proxy"}), "PG_IAM_SESSION_NAME"},
		{"valkey IAM without verification", with(map[string]string{"VALKEY_IAM_AUTH": "true", "VALKEY_URL": "rediss://cache:6379", "VALKEY_IAM_USER": "u",
			"VALKEY_CACHE_NAME": "c", "VALKEY_TLS_SKIP_VERIFY": "true"}), "VALKEY_TLS_SKIP_VERIFY=true with VALKEY_IAM_AUTH"},
		{"valkey IAM without URL", with(map[string]string{"VALKEY_IAM_AUTH": "true", "VALKEY_IAM_USER": "u", "VALKEY_CACHE_NAME": "c"}), "needs VALKEY_URL"},
		{"valkey IAM in plaintext", with(map[string]string{"VALKEY_IAM_AUTH": "true", "VALKEY_URL": "redis://cache:6379", "VALKEY_IAM_USER": "u", "VALKEY_CACHE_NAME": "c"}), "rediss://"},
		{"valkey IAM with password", with(map[string]string{"VALKEY_IAM_AUTH": "true", "VALKEY_URL": "rediss://u:pw@cache:6379", "VALKEY_IAM_USER": "u", "VALKEY_CACHE_NAME": "c"}), "password in VALKEY_URL"},
		{"valkey IAM without user", with(map[string]string{"VALKEY_IAM_AUTH": "true", "VALKEY_URL": "rediss://cache:6379", "VALKEY_CACHE_NAME": "c"}), "VALKEY_IAM_USER is required"},
		{"valkey IAM without cache", with(map[string]string{"VALKEY_IAM_AUTH": "true", "VALKEY_URL": "rediss://cache:6379", "VALKEY_IAM_USER": "u"}), "VALKEY_CACHE_NAME is required"},
		{"valkey IAM without region", map[string]string{"PG_BACKEND_URL": "postgres://u:p@db/app", "VALKEY_IAM_AUTH": "true", "VALKEY_URL": "rediss://cache:6379", "VALKEY_IAM_USER": "u", "VALKEY_CACHE_NAME": "c"}, "VALKEY_AWS_REGION is required"},
	}
	for _, c := range cases {
		_, err := Load(env(c.env))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

func TestIAMConfiguration(t *testing.T) {
	c, err := Load(env(map[string]string{
		"PG_BACKEND_URL":    "postgres://db.rds.amazonaws.com/app?sslmode=verify-full",
		"PG_IAM_AUTH":       "true",
		"PG_IAM_USERNAME":   "pgproxy_iam",
		"PG_AWS_REGION":     "eu-west-1",
		"PG_IAM_ROLE_ARN":   "arn:aws:iam::444455556666:role/pgproxy",
		"ANALYSIS_ENABLED":  "true",
		"PROXY_MODE":        "shunt",
		"SHUNT_NODE_URL":    "postgres://replica.rds.amazonaws.com/app?sslmode=verify-full",
		"REPORTER_DB_URL":   "postgres://reporter@reporter.rds.amazonaws.com/ops?sslmode=verify-full",
		"VALKEY_URL":        "rediss://cache.amazonaws.com:6379",
		"VALKEY_IAM_AUTH":   "true",
		"VALKEY_IAM_USER":   "pgproxy-cache",
		"VALKEY_CACHE_NAME": "decisions",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if b := c.Backend; !b.IAM || b.User != "pgproxy_iam" || b.Password != "" {
		t.Errorf("backend: IAM %v, user %q", b.IAM, b.User)
	}
	if sh := c.Guardrails.Shunt; !sh.IAM || sh.User != "pgproxy_iam" {
		t.Errorf("shunt: IAM %v, user %q", sh.IAM, sh.User)
	}
	if !c.Guardrails.Reporter.IAM {
		t.Error("a reporter URL without password is not an IAM login")
	}
	a := c.AWS
	if a.SessionName != "pgproxy" || a.ValkeyRegion != "eu-west-1" || a.RoleARN == "" || a.ValkeyRoleARN != "" {
		t.Errorf("AWS: %+v", a)
	}
	// A reporter or shunt node with a password keeps it (not on RDS).
	c, err = Load(env(map[string]string{
		"PG_BACKEND_URL": "postgres://db/app?sslmode=verify-full", "PG_IAM_AUTH": "true",
		"PG_IAM_USERNAME": "pgproxy_iam", "PG_AWS_REGION": "eu-west-1",
		"SHUNT_NODE_URL":  "postgres://slow:pw@replica/app?sslmode=disable",
		"REPORTER_DB_URL": "postgres://rep:pw@reporter/ops?sslmode=disable",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Guardrails.Shunt.IAM || c.Guardrails.Reporter.IAM {
		t.Errorf("URLs with passwords became IAM logins: shunt %v, reporter %v", c.Guardrails.Shunt.IAM, c.Guardrails.Reporter.IAM)
	}
}

func TestRedshiftIAM(t *testing.T) {
	base := func(kv map[string]string) map[string]string {
		out := map[string]string{"PG_BACKEND_URL": "postgres://c.redshift.amazonaws.com:5439/dev?sslmode=verify-full",
			"PG_IAM_AUTH": "true", "PG_AWS_REGION": "eu-west-1", "BACKEND_FLAVOR": "redshift"}
		for k, v := range kv {
			out[k] = v
		}
		return out
	}
	c, err := Load(env(base(map[string]string{"REDSHIFT_CLUSTER_ID": "analytics", "PG_IAM_USERNAME": "pgproxy_iam"})))
	if err != nil {
		t.Fatal(err)
	}
	if c.Flavor != FlavorRedshift || !c.Backend.IAM || c.Backend.User != "pgproxy_iam" || c.AWS.RedshiftCluster != "analytics" {
		t.Errorf("provisioned: flavor %q, IAM %v, user %q, cluster %q", c.Flavor, c.Backend.IAM, c.Backend.User, c.AWS.RedshiftCluster)
	}
	c, err = Load(env(base(map[string]string{"REDSHIFT_WORKGROUP": "reports"})))
	if err != nil {
		t.Fatalf("serverless without PG_IAM_USERNAME: %v", err)
	}
	if !c.Backend.IAM || c.Backend.User == "" {
		t.Errorf("serverless: IAM %v, user %q", c.Backend.IAM, c.Backend.User)
	}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{base(nil), "REDSHIFT_CLUSTER_ID or REDSHIFT_WORKGROUP is required"},
		{base(map[string]string{"REDSHIFT_CLUSTER_ID": "a", "REDSHIFT_WORKGROUP": "b", "PG_IAM_USERNAME": "u"}), "are both set"},
		{base(map[string]string{"REDSHIFT_CLUSTER_ID": "a"}), "PG_IAM_USERNAME is required"},
		{base(map[string]string{"REDSHIFT_CLUSTER_ID": "a", "PG_IAM_USERNAME": "u",
			"REPORTER_DB_URL": "postgres://rep@r/ops?sslmode=verify-full"}), "REPORTER_DB_URL needs a password"},
		{map[string]string{"PG_BACKEND_URL": "postgres://u:p@h/db", "REDSHIFT_CLUSTER_ID": "a"}, "need BACKEND_FLAVOR=redshift"},
		{map[string]string{"PG_BACKEND_URL": "postgres://u:p@h/db", "BACKEND_FLAVOR": "oracle"}, "BACKEND_FLAVOR"},
	} {
		if _, err := Load(env(tc.env)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.env, err, tc.want)
		}
	}
}

func TestIAMRefusedInTransparentMode(t *testing.T) {
	_, err := LoadAgent(env(map[string]string{"PG_IAM_AUTH": "true", "PG_IAM_USERNAME": "u", "PG_AWS_REGION": "eu-west-1",
		"PG_BACKEND_URL": "postgres://original-destination/?sslmode=verify-ca"}))
	if err == nil || !strings.Contains(err.Error(), "not available in transparent mode") {
		t.Errorf("agent with IAM: %v", err)
	}
}
