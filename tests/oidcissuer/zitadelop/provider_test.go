package zitadelop

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func TestClientCredentialsGrant(t *testing.T) {
	p, err := New(Options{Clients: []Client{{
		ID:       "reporting-job",
		Secret:   "s3cret",
		Audience: []string{"pgproxy"},
		Claims:   map[string]any{"email": "reporting@example.com", "realm_access": map[string]any{"roles": []string{"db_reader"}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)

	var doc struct {
		Issuer  string   `json:"issuer"`
		JWKSURI string   `json:"jwks_uri"`
		Token   string   `json:"token_endpoint"`
		Grants  []string `json:"grant_types_supported"`
	}
	resp, err := p.CA().HTTPClient().Get(p.DiscoveryURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.Issuer != p.URL() || doc.Token != p.URL()+"/oauth/token" || !strings.Contains(strings.Join(doc.Grants, ","), "client_credentials") {
		t.Fatalf("discovery = %+v", doc)
	}

	tok, err := p.ClientCredentialsToken(t.Context(), "reporting-job", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("access token is not a JWT: %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	if claims["iss"] != p.URL() || claims["email"] != "reporting@example.com" || claims["sub"] != "service-account-reporting-job" {
		t.Fatalf("claims = %v", claims)
	}

	if _, err := p.ClientCredentialsToken(t.Context(), "reporting-job", "wrong"); err == nil {
		t.Fatal("wrong secret got a token")
	}
	if _, err := p.ClientCredentialsToken(t.Context(), "nobody", "x"); err == nil {
		t.Fatal("unknown client got a token")
	}
}
