package identity

import (
	"testing"

	"github.com/pgproxy/pgproxy/tests/oidcissuer/zitadelop"
)

// TestRealProviderClientCredentials validates an access token obtained from
// the zitadel OpenID Provider through a real client_credentials grant.
func TestRealProviderClientCredentials(t *testing.T) {
	p, err := zitadelop.New(zitadelop.Options{Clients: []zitadelop.Client{
		{
			ID: "reporting-job", Secret: "s3cret", Audience: []string{"pgproxy"},
			Claims: map[string]any{
				"email":        "reporting@example.com",
				"realm_access": map[string]any{"roles": []string{"db_reader"}},
			},
		},
		{ID: "other-job", Secret: "s3cret", Audience: []string{"pgproxy"}},
		{ID: "foreign-api", Secret: "s3cret", Audience: []string{"another-api"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	ca, err := p.CA().WriteFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewValidator(t.Context(), Config{
		DiscoveryURL:     p.DiscoveryURL(),
		Audiences:        []string{"pgproxy"},
		AllowedRoles:     []string{"db_reader"},
		AllowedDatabases: []string{"app"},
		CACertPath:       ca,
		ClockLeeway:      DefaultClockLeeway,
	}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if !v.Ready() {
		t.Fatal("not ready")
	}

	tests := []struct {
		client   string
		database string
		reason   Reason
		name     string
	}{
		{client: "reporting-job", database: "app", name: "reporting@example.com"},
		{client: "reporting-job", database: "postgres", reason: ReasonDatabaseNotAllowed},
		{client: "other-job", reason: ReasonMissingRole},
		{client: "foreign-api", reason: ReasonWrongAudience},
	}
	for _, tc := range tests {
		t.Run(tc.client+"/"+tc.database, func(t *testing.T) {
			tok, err := p.ClientCredentialsToken(t.Context(), tc.client, "s3cret")
			if err != nil {
				t.Fatal(err)
			}
			id, err := v.Validate(t.Context(), tok, tc.database)
			wantReason(t, err, tc.reason, tok)
			if tc.reason == "" && (id.Name != tc.name || ApplicationName(id.Name) != "jwt:"+tc.name) {
				t.Fatalf("identity = %+v", id)
			}
		})
	}
}
