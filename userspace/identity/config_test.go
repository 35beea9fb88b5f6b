package identity

import (
	"errors"
	"slices"
	"testing"

	"github.com/pgproxy/pgproxy/userspace/config"
)

// The OIDC_* variables are parsed and checked in package config
// (config/oidc_test.go); here only the hand-over and the validator's guard.

func TestConfigFromOIDCDefaults(t *testing.T) {
	env := map[string]string{
		"PG_BACKEND_URL":     "postgres://svc:pw@db.internal/app",
		"OIDC_AUTH":          "true",
		"OIDC_DISCOVERY_URL": "https://kc.example.com/realms/r/.well-known/openid-configuration",
		"OIDC_AUDIENCE":      "pgproxy",
	}
	c, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	ic := ConfigFromOIDC(c.OIDC)
	// config's defaults (Vars) and this package's must agree.
	if ic.ClockLeeway != DefaultClockLeeway || !slices.Equal(ic.IdentityClaims, DefaultIdentityClaims) ||
		!slices.Equal(ic.Audiences, []string{"pgproxy"}) || ic.DiscoveryURL != env["OIDC_DISCOVERY_URL"] {
		t.Fatalf("config = %+v", ic)
	}
	if err := ic.Validate(); err != nil {
		t.Fatalf("a configuration config.Load accepted fails Validate: %v", err)
	}
}

func TestNewValidatorRejectsBadConfig(t *testing.T) {
	_, err := NewValidator(t.Context(), Config{DiscoveryURL: "https://x.example"}, nil)
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Var != "OIDC_AUDIENCE" {
		t.Fatalf("err = %v", err)
	}
}

func TestCheckURLQuotesTheURL(t *testing.T) {
	err := checkURL("http://kc.example.com/r")
	if err == nil || err.Error() != `"http://kc.example.com/r" must use https (http is allowed only for localhost)` {
		t.Fatalf("err = %v", err)
	}
	if err := checkURL("http://[::1]:8080/r"); err != nil {
		t.Fatal(err)
	}
}
