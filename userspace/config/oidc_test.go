package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestOIDCSection(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	valid := map[string]string{
		"PG_BACKEND_URL":     "postgres://svc:pw@db.internal/app",
		"OIDC_AUTH":          "true",
		"OIDC_DISCOVERY_URL": "https://kc.example.com/realms/r/.well-known/openid-configuration",
		"OIDC_AUDIENCE":      "pgproxy",
	}
	tests := []struct {
		name    string
		env     map[string]string
		badVar  string // the error's first word
		checkFn func(*testing.T, OIDC)
	}{
		{name: "defaults", env: valid, checkFn: func(t *testing.T, o OIDC) {
			if !o.Enabled || o.ClockLeeway != 60*time.Second || len(o.AllowedRoles) != 0 || len(o.AllowedDatabases) != 0 ||
				!slices.Equal(o.IdentityClaims, []string{"email", "upn", "preferred_username", "sub"}) {
				t.Fatalf("config = %+v", o)
			}
		}},
		{name: "lists trimmed and deduplicated", env: map[string]string{
			"OIDC_AUDIENCE":          " pgproxy , api://pgproxy,,pgproxy",
			"OIDC_ALLOWED_ROLES":     "db_reader, analyst",
			"OIDC_ALLOWED_DATABASES": "app,reports ",
			"OIDC_IDENTITY_CLAIMS":   "upn,email",
			"OIDC_ROLES_CLAIM":       "custom.path.roles",
			"OIDC_ISSUER_OVERRIDE":   "https://sts.windows.net/t/",
			"OIDC_CLOCK_LEEWAY":      "90s",
		}, checkFn: func(t *testing.T, o OIDC) {
			if !slices.Equal(o.Audiences, []string{"pgproxy", "api://pgproxy"}) ||
				!slices.Equal(o.AllowedRoles, []string{"db_reader", "analyst"}) ||
				!slices.Equal(o.AllowedDatabases, []string{"app", "reports"}) ||
				!slices.Equal(o.IdentityClaims, []string{"upn", "email"}) ||
				o.RolesClaim != "custom.path.roles" || o.ClockLeeway != 90*time.Second ||
				o.IssuerOverride != "https://sts.windows.net/t/" {
				t.Fatalf("config = %+v", o)
			}
		}},
		{name: "identity claims that are all blank take the default", env: map[string]string{"OIDC_IDENTITY_CLAIMS": " , "},
			checkFn: func(t *testing.T, o OIDC) {
				if len(o.IdentityClaims) != 4 {
					t.Fatalf("identity claims = %v", o.IdentityClaims)
				}
			}},
		{name: "leeway in seconds", env: map[string]string{"OIDC_CLOCK_LEEWAY": "30"}, checkFn: func(t *testing.T, o OIDC) {
			if o.ClockLeeway != 30*time.Second {
				t.Fatalf("leeway = %s", o.ClockLeeway)
			}
		}},
		{name: "zero leeway", env: map[string]string{"OIDC_CLOCK_LEEWAY": "0"}, checkFn: func(t *testing.T, o OIDC) {
			if o.ClockLeeway != 0 {
				t.Fatalf("leeway = %s", o.ClockLeeway)
			}
		}},
		{name: "leeway at the maximum", env: map[string]string{"OIDC_CLOCK_LEEWAY": "5m"}, checkFn: func(t *testing.T, o OIDC) {
			if o.ClockLeeway != MaxClockLeeway {
				t.Fatalf("leeway = %s", o.ClockLeeway)
			}
		}},
		{name: "http on localhost", env: map[string]string{"OIDC_DISCOVERY_URL": "http://127.0.0.1:8080/realms/r"}},
		{name: "http on localhost by name", env: map[string]string{"OIDC_DISCOVERY_URL": "http://localhost:8080/realms/r"}},
		{name: "missing discovery", env: map[string]string{"OIDC_DISCOVERY_URL": ""}, badVar: "OIDC_DISCOVERY_URL"},
		{name: "plain http", env: map[string]string{"OIDC_DISCOVERY_URL": "http://kc.example.com/realms/r"}, badVar: "OIDC_DISCOVERY_URL"},
		{name: "relative URL", env: map[string]string{"OIDC_DISCOVERY_URL": "/realms/r"}, badVar: "OIDC_DISCOVERY_URL"},
		{name: "not https", env: map[string]string{"OIDC_DISCOVERY_URL": "ftp://kc.example.com/r"}, badVar: "OIDC_DISCOVERY_URL"},
		{name: "bad override", env: map[string]string{"OIDC_ISSUER_OVERRIDE": "sts.windows.net"}, badVar: "OIDC_ISSUER_OVERRIDE"},
		{name: "missing audience", env: map[string]string{"OIDC_AUDIENCE": " , "}, badVar: "OIDC_AUDIENCE"},
		{name: "bad roles claim", env: map[string]string{"OIDC_ROLES_CLAIM": "a..b"}, badVar: "OIDC_ROLES_CLAIM"},
		{name: "bad identity claim", env: map[string]string{"OIDC_IDENTITY_CLAIMS": "email,.x"}, badVar: "OIDC_IDENTITY_CLAIMS"},
		{name: "missing CA file", env: map[string]string{"OIDC_CERT_PATH": filepath.Join(dir, "nope.pem")}, badVar: "OIDC_CERT_PATH"},
		{name: "CA file without PEM", env: map[string]string{"OIDC_CERT_PATH": notPEM}, badVar: "OIDC_CERT_PATH"},
		{name: "leeway not a duration", env: map[string]string{"OIDC_CLOCK_LEEWAY": "soon"}, badVar: "OIDC_CLOCK_LEEWAY"},
		{name: "leeway negative", env: map[string]string{"OIDC_CLOCK_LEEWAY": "-5s"}, badVar: "OIDC_CLOCK_LEEWAY"},
		{name: "leeway negative seconds", env: map[string]string{"OIDC_CLOCK_LEEWAY": "-5"}, badVar: "OIDC_CLOCK_LEEWAY"},
		{name: "leeway too large", env: map[string]string{"OIDC_CLOCK_LEEWAY": "1h"}, badVar: "OIDC_CLOCK_LEEWAY"},
		{name: "leeway seconds far below zero", env: map[string]string{"OIDC_CLOCK_LEEWAY": "-99999999999999999999"}, badVar: "OIDC_CLOCK_LEEWAY"},
		{name: "leeway seconds too large", env: map[string]string{"OIDC_CLOCK_LEEWAY": "99999999999999999999"}, badVar: "OIDC_CLOCK_LEEWAY"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kv := map[string]string{}
			for k, v := range valid {
				kv[k] = v
			}
			for k, v := range tc.env {
				kv[k] = v
			}
			c, err := Load(env(kv))
			if tc.badVar != "" {
				if err == nil || strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), tc.badVar) {
					t.Fatalf("err = %v, want one line naming %s", err, tc.badVar)
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.checkFn != nil {
				tc.checkFn(t, c.OIDC)
			}
		})
	}
}

func TestOIDCVariablesIgnoredWithoutOIDCAuth(t *testing.T) {
	c, err := Load(env(map[string]string{"PG_BACKEND_URL": "postgres://h/db",
		"OIDC_DISCOVERY_URL": "http://kc.example.com/r", "OIDC_CLOCK_LEEWAY": "soon"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.OIDC.Enabled || c.OIDC.DiscoveryURL != "" || c.OIDC.ClockLeeway != 0 {
		t.Fatalf("OIDC section without OIDC_AUTH: %+v", c.OIDC)
	}
}
