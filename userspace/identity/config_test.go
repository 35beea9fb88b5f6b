package identity

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestConfigFromEnv(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	valid := map[string]string{
		"OIDC_DISCOVERY_URL": "https://kc.example.com/realms/r/.well-known/openid-configuration",
		"OIDC_AUDIENCE":      "pgproxy",
	}
	tests := []struct {
		name    string
		env     map[string]string
		badVar  string
		checkFn func(*testing.T, Config)
	}{
		{name: "defaults", env: valid, checkFn: func(t *testing.T, c Config) {
			if c.ClockLeeway != DefaultClockLeeway || len(c.AllowedRoles) != 0 || len(c.AllowedDatabases) != 0 {
				t.Fatalf("config = %+v", c)
			}
			if len(c.IdentityClaims) != 0 { // NewValidator applies DefaultIdentityClaims
				t.Fatalf("identity claims = %v", c.IdentityClaims)
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
		}, checkFn: func(t *testing.T, c Config) {
			if !slices.Equal(c.Audiences, []string{"pgproxy", "api://pgproxy"}) ||
				!slices.Equal(c.AllowedRoles, []string{"db_reader", "analyst"}) ||
				!slices.Equal(c.AllowedDatabases, []string{"app", "reports"}) ||
				!slices.Equal(c.IdentityClaims, []string{"upn", "email"}) ||
				c.RolesClaim != "custom.path.roles" || c.ClockLeeway != 90*time.Second ||
				c.IssuerOverride != "https://sts.windows.net/t/" {
				t.Fatalf("config = %+v", c)
			}
		}},
		{name: "leeway in seconds", env: map[string]string{"OIDC_CLOCK_LEEWAY": "30"}, checkFn: func(t *testing.T, c Config) {
			if c.ClockLeeway != 30*time.Second {
				t.Fatalf("leeway = %s", c.ClockLeeway)
			}
		}},
		{name: "zero leeway", env: map[string]string{"OIDC_CLOCK_LEEWAY": "0"}, checkFn: func(t *testing.T, c Config) {
			if c.ClockLeeway != 0 {
				t.Fatalf("leeway = %s", c.ClockLeeway)
			}
		}},
		{name: "http on localhost", env: map[string]string{"OIDC_DISCOVERY_URL": "http://127.0.0.1:8080/realms/r"}},
		{name: "missing discovery", env: map[string]string{"OIDC_DISCOVERY_URL": ""}, badVar: "OIDC_DISCOVERY_URL"},
		{name: "plain http", env: map[string]string{"OIDC_DISCOVERY_URL": "http://kc.example.com/realms/r"}, badVar: "OIDC_DISCOVERY_URL"},
		{name: "relative URL", env: map[string]string{"OIDC_DISCOVERY_URL": "/realms/r"}, badVar: "OIDC_DISCOVERY_URL"},
		{name: "bad override", env: map[string]string{"OIDC_ISSUER_OVERRIDE": "sts.windows.net"}, badVar: "OIDC_ISSUER_OVERRIDE"},
		{name: "missing audience", env: map[string]string{"OIDC_AUDIENCE": " , "}, badVar: "OIDC_AUDIENCE"},
		{name: "bad roles claim", env: map[string]string{"OIDC_ROLES_CLAIM": "a..b"}, badVar: "OIDC_ROLES_CLAIM"},
		{name: "bad identity claim", env: map[string]string{"OIDC_IDENTITY_CLAIMS": "email,.x"}, badVar: "OIDC_IDENTITY_CLAIMS"},
		{name: "missing CA file", env: map[string]string{"OIDC_CERT_PATH": filepath.Join(dir, "nope.pem")}, badVar: "OIDC_CERT_PATH"},
		{name: "CA file without PEM", env: map[string]string{"OIDC_CERT_PATH": notPEM}, badVar: "OIDC_CERT_PATH"},
		{name: "leeway not a duration", env: map[string]string{"OIDC_CLOCK_LEEWAY": "soon"}, badVar: "OIDC_CLOCK_LEEWAY"},
		{name: "leeway negative", env: map[string]string{"OIDC_CLOCK_LEEWAY": "-5s"}, badVar: "OIDC_CLOCK_LEEWAY"},
		{name: "leeway too large", env: map[string]string{"OIDC_CLOCK_LEEWAY": "1h"}, badVar: "OIDC_CLOCK_LEEWAY"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range valid {
				env[k] = v
			}
			for k, v := range tc.env {
				env[k] = v
			}
			c, err := ConfigFromEnv(func(k string) string { return env[k] })
			if tc.badVar != "" {
				var ce *ConfigError
				if !errors.As(err, &ce) || ce.Var != tc.badVar {
					t.Fatalf("err = %v, want a ConfigError for %s", err, tc.badVar)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.checkFn != nil {
				tc.checkFn(t, c)
			}
		})
	}
}

func TestNewValidatorRejectsBadConfig(t *testing.T) {
	_, err := NewValidator(t.Context(), Config{DiscoveryURL: "https://x.example"}, nil)
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Var != "OIDC_AUDIENCE" {
		t.Fatalf("err = %v", err)
	}
}
