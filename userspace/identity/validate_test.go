package identity

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgproxy/pgproxy/tests/oidcissuer"
)

func keycloak(mod func(*oidcissuer.KeycloakUser)) map[string]any {
	u := oidcissuer.KeycloakUser{
		Username:   "ann",
		Email:      "ann@example.com",
		ClientID:   "pgproxy",
		Audience:   []string{"account"},
		RealmRoles: []string{"offline_access", "db_reader"},
	}
	if mod != nil {
		mod(&u)
	}
	return oidcissuer.KeycloakClaims(u)
}

func with(c map[string]any, kv ...any) map[string]any {
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
			continue
		}
		c[kv[i].(string)] = kv[i+1]
	}
	return c
}

func TestValidateKeycloak(t *testing.T) {
	f := newFixture(t, oidcissuer.Options{}, func(c *Config) {
		c.AllowedRoles = []string{"db_reader", "analyst", "dba"}
		c.AllowedDatabases = []string{"app", "reports"}
		c.RolesClaim = "custom.path.roles"
	})
	now := f.clock.Now()
	tests := []struct {
		name     string
		claims   map[string]any
		opts     oidcissuer.IssueOptions
		token    string // overrides claims/opts
		database string
		reason   Reason
		wantName string
	}{
		{name: "valid RS256", claims: keycloak(nil), database: "app", wantName: "ann@example.com"},
		{name: "valid ES256", claims: keycloak(nil), opts: oidcissuer.IssueOptions{Alg: "ES256"}, database: "reports", wantName: "ann@example.com"},
		{name: "no database asked", claims: keycloak(nil), wantName: "ann@example.com"},
		{name: "no kid header", claims: keycloak(nil), opts: oidcissuer.IssueOptions{OmitKeyID: true}, wantName: "ann@example.com"},
		{name: "preferred_username when no email", claims: keycloak(func(u *oidcissuer.KeycloakUser) { u.Email = "" }), wantName: "ann"},
		{name: "sub as last resort", claims: with(keycloak(func(u *oidcissuer.KeycloakUser) { u.Email = "" }), "preferred_username", nil, "sub", "uuid-1"), wantName: "uuid-1"},
		{name: "empty email skipped", claims: with(keycloak(nil), "email", ""), wantName: "ann"},
		{name: "no identity claim", claims: with(keycloak(func(u *oidcissuer.KeycloakUser) { u.Email = "" }), "preferred_username", nil, "sub", nil), reason: ReasonMissingIdentity},

		{name: "expired", claims: keycloak(nil), opts: oidcissuer.IssueOptions{ExpiresIn: -2 * time.Minute}, reason: ReasonTokenExpired},
		{name: "expired within leeway", claims: keycloak(nil), opts: oidcissuer.IssueOptions{ExpiresIn: -30 * time.Second}, wantName: "ann@example.com"},
		{name: "no exp", claims: with(keycloak(nil), "iss", f.iss.URL()), opts: oidcissuer.IssueOptions{NoDefaults: true}, reason: ReasonMalformedToken},
		{name: "exp not a number", claims: with(keycloak(nil), "exp", "tomorrow"), reason: ReasonMalformedToken},
		{name: "nbf in the future", claims: with(keycloak(nil), "nbf", now.Add(5*time.Minute).Unix()), reason: ReasonTokenNotYetValid},
		{name: "nbf within leeway", claims: with(keycloak(nil), "nbf", now.Add(30*time.Second).Unix()), wantName: "ann@example.com"},
		{name: "iat in the future", claims: with(keycloak(nil), "iat", now.Add(time.Hour).Unix()), reason: ReasonTokenNotYetValid},

		{name: "wrong audience", claims: keycloak(func(u *oidcissuer.KeycloakUser) { u.ClientID = "other-app" }), reason: ReasonWrongAudience},
		{name: "no audience", claims: with(keycloak(nil), "aud", nil), reason: ReasonWrongAudience},
		{name: "audience as string", claims: with(keycloak(nil), "aud", "pgproxy"), wantName: "ann@example.com"},
		{name: "wrong issuer", claims: with(keycloak(nil), "iss", "https://evil.example/realms/test"), reason: ReasonWrongIssuer},
		{name: "issuer trailing slash", claims: with(keycloak(nil), "iss", f.iss.URL()+"/"), reason: ReasonWrongIssuer},

		{name: "unknown kid", claims: keycloak(nil), opts: oidcissuer.IssueOptions{Mode: oidcissuer.SignUnknownKey}, reason: ReasonUnknownKey},
		{name: "wrong key for published kid", claims: keycloak(nil), opts: oidcissuer.IssueOptions{Mode: oidcissuer.SignWrongKey}, reason: ReasonBadSignature},
		{name: "wrong key no kid", claims: keycloak(nil), opts: oidcissuer.IssueOptions{Mode: oidcissuer.SignWrongKey, OmitKeyID: true}, reason: ReasonBadSignature},
		{name: "alg none", claims: keycloak(nil), opts: oidcissuer.IssueOptions{Mode: oidcissuer.SignNone}, reason: ReasonUnsupportedAlgorithm},
		{name: "HS256 keyed with the public key", claims: keycloak(nil), opts: oidcissuer.IssueOptions{Mode: oidcissuer.SignHMACPublicKey}, reason: ReasonUnsupportedAlgorithm},
		{name: "tampered payload", token: tamper(f.issue(t, keycloak(nil), oidcissuer.IssueOptions{})), reason: ReasonBadSignature},

		{name: "too large", token: strings.Repeat("a", MaxTokenBytes+1), reason: ReasonTokenTooLarge},
		{name: "large but allowed", claims: with(keycloak(nil), "pad", strings.Repeat("x", 10<<10)), wantName: "ann@example.com"},
		{name: "empty", token: " ", reason: ReasonMalformedToken},
		{name: "not a JWT", token: "hunter2", reason: ReasonMalformedToken},
		{name: "bad header", token: "!!!.e30.sig", reason: ReasonMalformedToken},
		{name: "JWE shape", token: "a.b.c.d.e", reason: ReasonMalformedToken},
		{name: "surrounding whitespace", token: " " + f.issue(t, keycloak(nil), oidcissuer.IssueOptions{}) + "\n", wantName: "ann@example.com"},

		{name: "realm role", claims: keycloak(nil), wantName: "ann@example.com"},
		{name: "client role", claims: keycloak(func(u *oidcissuer.KeycloakUser) {
			u.RealmRoles = []string{"offline_access"}
			u.ClientRoles = map[string][]string{"pgproxy": {"analyst"}}
		}), wantName: "ann@example.com"},
		{name: "role of another client does not count", claims: keycloak(func(u *oidcissuer.KeycloakUser) {
			u.RealmRoles = []string{"offline_access"}
			u.ClientRoles = map[string][]string{"other-app": {"analyst"}}
		}), reason: ReasonMissingRole},
		{name: "group", claims: keycloak(func(u *oidcissuer.KeycloakUser) {
			u.RealmRoles = nil
			u.Groups = []string{"dba"}
		}), wantName: "ann@example.com"},
		{name: "group full path", claims: keycloak(func(u *oidcissuer.KeycloakUser) {
			u.RealmRoles = nil
			u.Groups = []string{"/dba"}
		}), wantName: "ann@example.com"},
		{name: "custom claim path", claims: with(keycloak(func(u *oidcissuer.KeycloakUser) { u.RealmRoles = nil }),
			"custom", map[string]any{"path": map[string]any{"roles": []string{"analyst"}}}), wantName: "ann@example.com"},
		{name: "custom claim path single string", claims: with(keycloak(func(u *oidcissuer.KeycloakUser) { u.RealmRoles = nil }),
			"custom", map[string]any{"path": map[string]any{"roles": "analyst"}}), wantName: "ann@example.com"},
		{name: "missing role", claims: keycloak(func(u *oidcissuer.KeycloakUser) { u.RealmRoles = []string{"offline_access"} }), reason: ReasonMissingRole},
		{name: "roles claim of wrong type", claims: with(keycloak(func(u *oidcissuer.KeycloakUser) { u.RealmRoles = nil }), "roles", 42), reason: ReasonMissingRole},

		{name: "database not allowed", claims: keycloak(nil), database: "postgres", reason: ReasonDatabaseNotAllowed},
		{name: "database case-sensitive", claims: keycloak(nil), database: "App", reason: ReasonDatabaseNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.token
			if tok == "" {
				tok = f.issue(t, tc.claims, tc.opts)
			}
			id, err := f.v.Validate(t.Context(), tok, tc.database)
			wantReason(t, err, tc.reason, tok)
			if tc.reason != "" {
				if !errors.Is(err, &Error{Reason: tc.reason}) {
					t.Fatalf("errors.Is with a %s sentinel failed", tc.reason)
				}
				return
			}
			if id.Name != tc.wantName {
				t.Fatalf("Name = %q, want %q", id.Name, tc.wantName)
			}
			if id.Issuer != f.iss.URL() || id.Database != tc.database || id.Expiry.IsZero() || id.Claims == nil {
				t.Fatalf("identity = %+v", id)
			}
		})
	}
}

// tamper changes one claim without re-signing.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	parts[1] = strings.Replace(parts[1], parts[1][:4], "eyJh", 1)
	if parts[1] == strings.Split(tok, ".")[1] {
		parts[1] = "e30" + parts[1][3:]
	}
	return strings.Join(parts, ".")
}

func TestValidateRolesCollected(t *testing.T) {
	f := newFixture(t, oidcissuer.Options{}, func(c *Config) { c.Audiences = []string{"pgproxy", "reports-app"} })
	claims := keycloak(func(u *oidcissuer.KeycloakUser) {
		u.RealmRoles = []string{"r1", "shared"}
		u.ClientRoles = map[string][]string{"pgproxy": {"c1", "shared"}, "reports-app": {"c2"}, "other": {"x"}}
		u.Groups = []string{"/team/db", "g1"}
	})
	claims["roles"] = []string{"entra-role"}
	id, err := f.v.Validate(t.Context(), f.issue(t, claims, oidcissuer.IssueOptions{}), "")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(id.Roles)
	want := []string{"c1", "c2", "entra-role", "g1", "r1", "shared", "/team/db", "team/db"}
	slices.Sort(want)
	if !slices.Equal(id.Roles, want) {
		t.Fatalf("roles = %v, want %v", id.Roles, want)
	}
}

func TestValidateEntra(t *testing.T) {
	const tenant = "11111111-2222-3333-4444-555555555555"
	f := newFixture(t, oidcissuer.Options{
		Path:           "/" + tenant + "/v2.0",
		Algorithms:     []string{"RS256"},
		KeyAlgorithms:  []string{"RS256"},
		DocumentIssuer: oidcissuer.EntraIssuerV1(tenant), // like the v1 discovery document
	}, func(c *Config) {
		c.IssuerOverride = oidcissuer.EntraIssuerV1(tenant)
		c.Audiences = []string{"api://pgproxy"}
		c.AllowedRoles = []string{"Database.Read"}
	})
	if f.v.Issuer() != "https://sts.windows.net/"+tenant+"/" {
		t.Fatalf("issuer = %q", f.v.Issuer())
	}
	user := oidcissuer.EntraUser{TenantID: tenant, UPN: "carol@contoso.com", Audience: "api://pgproxy", Roles: []string{"Database.Read"}}

	id, err := f.v.Validate(t.Context(), f.issue(t, oidcissuer.EntraClaims(user), oidcissuer.IssueOptions{}), "")
	if err != nil {
		t.Fatal(err)
	}
	if id.Name != "carol@contoso.com" || id.NameClaim != "upn" {
		t.Fatalf("identity = %s via %s", id.Name, id.NameClaim)
	}

	noRole := user
	noRole.Roles = nil
	noRole.Groups = []string{"5f1e0000-0000-0000-0000-000000000000"}
	_, err = f.v.Validate(t.Context(), f.issue(t, oidcissuer.EntraClaims(noRole), oidcissuer.IssueOptions{}), "")
	wantReason(t, err, ReasonMissingRole, "")

	v2 := user
	v2.V2 = true // iss is the v2.0 URL, not the override
	_, err = f.v.Validate(t.Context(), f.issue(t, oidcissuer.EntraClaims(v2), oidcissuer.IssueOptions{}), "")
	wantReason(t, err, ReasonWrongIssuer, "")

	// ES256 is not advertised by this issuer: refused before any key lookup.
	if _, err := f.iss.Rotate("ES256", true); err != nil {
		t.Fatal(err)
	}
	tok := f.issue(t, oidcissuer.EntraClaims(user), oidcissuer.IssueOptions{Alg: "ES256"})
	_, err = f.v.Validate(t.Context(), tok, "")
	wantReason(t, err, ReasonUnsupportedAlgorithm, tok)
}

func TestIssuerMismatchIsConfigError(t *testing.T) {
	iss := newIssuer(t, oidcissuer.Options{DocumentIssuer: "https://sts.windows.net/t/"})
	cfg := baseConfig(t, iss, newFakeClock())
	_, err := NewValidator(t.Context(), cfg, testLogger(t))
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Var != "OIDC_DISCOVERY_URL" || !strings.Contains(ce.Msg, "OIDC_ISSUER_OVERRIDE") {
		t.Fatalf("err = %v", err)
	}
}

func TestNoAsymmetricAlgorithm(t *testing.T) {
	iss := newIssuer(t, oidcissuer.Options{Algorithms: []string{"HS256", "none"}})
	_, err := NewValidator(t.Context(), baseConfig(t, iss, newFakeClock()), testLogger(t))
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v", err)
	}
}

func TestDiscoveryURLForms(t *testing.T) {
	iss := newIssuer(t, oidcissuer.Options{})
	cfg := baseConfig(t, iss, newFakeClock())
	cfg.DiscoveryURL = iss.URL() // the issuer itself, without the well-known suffix
	v, err := NewValidator(t.Context(), cfg, testLogger(t))
	if err != nil || !v.Ready() {
		t.Fatalf("ready=%v err=%v", v != nil && v.Ready(), err)
	}
}

func TestUntrustedCertificate(t *testing.T) {
	iss := newIssuer(t, oidcissuer.Options{})
	cfg := baseConfig(t, iss, newFakeClock())
	cfg.CACertPath = "" // system roots only: the test CA is not trusted
	cfg.StartupTimeout = 2 * time.Second
	v, err := NewValidator(t.Context(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if v.Ready() {
		t.Fatal("ready although the issuer's certificate is not trusted")
	}
	tok := iss.MustIssue(keycloak(nil), oidcissuer.IssueOptions{})
	_, err = v.Validate(t.Context(), tok, "")
	wantReason(t, err, ReasonIssuerUnavailable, tok)
}

func TestUnknownKidRateLimited(t *testing.T) {
	f := newFixture(t, oidcissuer.Options{}, nil)
	base := f.iss.JWKSRequests() // the start-up download

	// Fresh EC keys (and kids) per token: cheap to make, unknown to the JWKS.
	toks := make([]string, 100)
	for i := range toks {
		toks[i] = f.issue(t, keycloak(nil), oidcissuer.IssueOptions{Alg: "ES256", Mode: oidcissuer.SignUnknownKey})
	}
	flood := func() {
		var wg sync.WaitGroup
		for _, tok := range toks {
			wg.Go(func() {
				_, err := f.v.Validate(within(t, 10*time.Second), tok, "")
				if ReasonOf(err) != ReasonUnknownKey {
					t.Errorf("reason = %s (%v)", ReasonOf(err), err)
				}
			})
		}
		wg.Wait()
	}

	start := time.Now()
	flood() // inside the window of the start-up download: they all wait for the next one
	if got := f.iss.JWKSRequests() - base; got != 1 {
		t.Fatalf("flood inside the window fetched the JWKS %d times, want 1", got)
	}
	flood() // right after that download: again one, an interval later
	elapsed := time.Since(start)
	got := f.iss.JWKSRequests() - base
	if limit := maxDownloads(elapsed, f.cfg.JWKSMinRefreshInterval); got != 2 || got > limit {
		t.Fatalf("two floods fetched the JWKS %d times in %s, want 2 (at most %d)", got, elapsed, limit)
	}
}

func TestKeyRotation(t *testing.T) {
	f := newFixture(t, oidcissuer.Options{}, nil)
	oldTok := f.issue(t, keycloak(nil), oidcissuer.IssueOptions{})
	base := f.iss.JWKSRequests()

	newKID, err := f.iss.Rotate("RS256", true)
	if err != nil {
		t.Fatal(err)
	}
	newTok := f.issue(t, keycloak(nil), oidcissuer.IssueOptions{})

	// Right after the last download the new kid is not refused: the first
	// attempt waits for the next allowed download, which brings it.
	if _, err := f.v.Validate(within(t, 10*time.Second), newTok, ""); err != nil {
		t.Fatalf("first attempt with rotated key %s: %v", newKID, err)
	}
	if _, err := f.v.Validate(t.Context(), oldTok, ""); err != nil {
		t.Fatalf("token with the overlapping old key: %v", err)
	}
	for range 5 {
		if _, err := f.v.Validate(t.Context(), newTok, ""); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.iss.JWKSRequests() - base; got != 1 {
		t.Fatalf("JWKS downloads after rotation = %d, want 1", got)
	}

	// An EC key rotation works the same way.
	if _, err := f.iss.Rotate("ES256", false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.Validate(within(t, 10*time.Second), f.issue(t, keycloak(nil), oidcissuer.IssueOptions{Alg: "ES256"}), ""); err != nil {
		t.Fatal(err)
	}
}

func TestWithdrawnKeyStopsVerifyingAfterPeriodicRefresh(t *testing.T) {
	iss := newIssuer(t, oidcissuer.Options{})
	clock := newFakeClock()
	cfg := baseConfig(t, iss, clock)
	cfg.Now = nil // real clock: the periodic refresh runs on real time
	cfg.JWKSMinRefreshInterval = 10 * time.Millisecond
	cfg.JWKSRefreshInterval = 50 * time.Millisecond
	v, err := NewValidator(t.Context(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	oldKID := iss.ActiveKeyID("RS256")
	tok := iss.MustIssue(keycloak(nil), oidcissuer.IssueOptions{})
	if _, err := v.Validate(t.Context(), tok, ""); err != nil {
		t.Fatal(err)
	}
	iss.RemoveKey(oldKID)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := v.Validate(t.Context(), tok, "")
		if ReasonOf(err) == ReasonUnknownKey {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("withdrawn key still accepted: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestJWKSDownDuringRefresh(t *testing.T) {
	f := newFixture(t, oidcissuer.Options{}, nil)
	good := f.issue(t, keycloak(nil), oidcissuer.IssueOptions{})
	f.iss.SetJWKSFailure(true)
	if _, err := f.iss.Rotate("RS256", true); err != nil {
		t.Fatal(err)
	}
	tok := f.issue(t, keycloak(nil), oidcissuer.IssueOptions{})
	_, err := f.v.Validate(within(t, 10*time.Second), tok, "")
	wantReason(t, err, ReasonIssuerUnavailable, tok)
	// Cached keys keep working.
	if _, err := f.v.Validate(t.Context(), good, ""); err != nil {
		t.Fatal(err)
	}
	if !f.v.Ready() {
		t.Fatal("not ready although keys are cached")
	}
}

func TestIssuerDownAtStartup(t *testing.T) {
	iss := newIssuer(t, oidcissuer.Options{})
	clock := newFakeClock()
	cfg := baseConfig(t, iss, clock)
	cfg.JWKSMinRefreshInterval = 50 * time.Millisecond
	iss.Stop()

	start := time.Now()
	v, err := NewValidator(t.Context(), cfg, testLogger(t))
	if err != nil {
		t.Fatalf("NewValidator failed with the issuer down: %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("NewValidator took %s with the issuer refusing connections", time.Since(start))
	}
	if v.Ready() {
		t.Fatal("ready with the issuer down")
	}
	tok := iss.MustIssue(keycloak(nil), oidcissuer.IssueOptions{Now: clock.Now()})
	_, err = v.Validate(t.Context(), tok, "")
	wantReason(t, err, ReasonIssuerUnavailable, tok)

	if err := iss.Start(); err != nil {
		t.Fatal(err)
	}
	waitReady(t, t.Context(), v, 10*time.Second)
	if _, err := v.Validate(t.Context(), tok, ""); err != nil {
		t.Fatalf("after the issuer came up: %v", err)
	}
}

func TestValidateNotReadyPokesRetry(t *testing.T) {
	iss := newIssuer(t, oidcissuer.Options{})
	cfg := baseConfig(t, iss, newFakeClock())
	cfg.JWKSMinRefreshInterval = 10 * time.Millisecond
	iss.Stop()
	v, err := NewValidator(t.Context(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	// Let the backoff grow beyond the test's patience, then poke.
	time.Sleep(200 * time.Millisecond)
	if err := iss.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !v.Ready() {
		_, _ = v.Validate(t.Context(), "x.y.z", "")
		if time.Now().After(deadline) {
			t.Fatal("not ready")
		}
		time.Sleep(30 * time.Millisecond)
	}
}

func TestIdentityLogValueHasNoClaims(t *testing.T) {
	id := Identity{Name: "ann@example.com", NameClaim: "email", Subject: "s", Claims: map[string]any{"secret": "x"}}
	if s := id.LogValue().String(); strings.Contains(s, "secret") || !strings.Contains(s, "ann@example.com") {
		t.Fatalf("LogValue = %s", s)
	}
}
