package oidcissuer

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func newIssuer(t *testing.T, opts Options) *Issuer {
	t.Helper()
	iss, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(iss.Close)
	return iss
}

func getJSON(t *testing.T, c *http.Client, url string, v any) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func fetchKeys(t *testing.T, iss *Issuer) jose.JSONWebKeySet {
	t.Helper()
	var set jose.JSONWebKeySet
	getJSON(t, iss.HTTPClient(), iss.JWKSURL(), &set)
	return set
}

func TestDiscoveryAndJWKS(t *testing.T) {
	iss := newIssuer(t, Options{})
	if !strings.HasPrefix(iss.URL(), "https://127.0.0.1:") {
		t.Fatalf("URL = %q", iss.URL())
	}
	// The default client does not trust the test CA.
	if _, err := http.Get(iss.DiscoveryURL()); err == nil {
		t.Fatal("discovery over HTTPS succeeded without the test CA")
	}
	var doc struct {
		Issuer  string   `json:"issuer"`
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	getJSON(t, iss.HTTPClient(), iss.DiscoveryURL(), &doc)
	if doc.Issuer != iss.URL() || doc.JWKSURI != iss.JWKSURL() {
		t.Fatalf("discovery = %+v", doc)
	}
	if strings.Join(doc.Algs, ",") != "RS256,ES256,HS256" {
		t.Fatalf("algs = %v", doc.Algs)
	}
	set := fetchKeys(t, iss)
	var kinds []string
	for _, k := range set.Keys {
		if !k.IsPublic() || k.Use != "sig" || k.KeyID == "" {
			t.Fatalf("bad published key %+v", k)
		}
		kinds = append(kinds, k.Algorithm)
	}
	if strings.Join(kinds, ",") != "RS256,ES256" {
		t.Fatalf("published algorithms = %v", kinds)
	}
	if iss.JWKSRequests() != 1 || iss.DiscoveryRequests() != 1 {
		t.Fatalf("counters = %d, %d", iss.JWKSRequests(), iss.DiscoveryRequests())
	}
}

func TestIssueVerifies(t *testing.T) {
	iss := newIssuer(t, Options{})
	set := fetchKeys(t, iss)
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			tok := iss.MustIssue(KeycloakClaims(KeycloakUser{Username: "ann", Email: "ann@example.com", ClientID: "pgproxy"}), IssueOptions{Alg: alg})
			jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatal(err)
			}
			kid := jws.Signatures[0].Header.KeyID
			keys := set.Key(kid)
			if len(keys) != 1 {
				t.Fatalf("kid %q not published", kid)
			}
			payload, err := jws.Verify(keys[0])
			if err != nil {
				t.Fatal(err)
			}
			var c map[string]any
			if err := json.Unmarshal(payload, &c); err != nil {
				t.Fatal(err)
			}
			if c["iss"] != iss.URL() || c["email"] != "ann@example.com" || c["aud"] != "pgproxy" {
				t.Fatalf("claims = %v", c)
			}
			if exp := int64(c["exp"].(float64)); exp < time.Now().Unix() {
				t.Fatalf("exp %d in the past", exp)
			}
		})
	}
}

func header(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestBadTokens(t *testing.T) {
	iss := newIssuer(t, Options{})
	set := fetchKeys(t, iss)
	claims := map[string]any{"sub": "x"}

	tok := iss.MustIssue(claims, IssueOptions{Mode: SignUnknownKey})
	if kid := header(t, tok)["kid"].(string); len(set.Key(kid)) != 0 {
		t.Fatalf("unknown-key token uses published kid %q", kid)
	}

	tok = iss.MustIssue(claims, IssueOptions{Mode: SignWrongKey})
	kid := header(t, tok)["kid"].(string)
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify(set.Key(kid)[0]); err == nil {
		t.Fatal("wrong-key token verified with the published key")
	}

	tok = iss.MustIssue(claims, IssueOptions{Mode: SignNone})
	if h := header(t, tok); h["alg"] != "none" || !strings.HasSuffix(tok, ".") {
		t.Fatalf("none token = %q", tok)
	}

	tok = iss.MustIssue(claims, IssueOptions{Mode: SignHMACPublicKey})
	if h := header(t, tok); h["alg"] != "HS256" {
		t.Fatalf("hmac header = %v", h)
	}

	tok = iss.MustIssue(claims, IssueOptions{ExpiresIn: -time.Hour})
	jws, _ = jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
	var c struct{ Exp int64 }
	_ = json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c)
	if c.Exp > time.Now().Unix() {
		t.Fatal("expired token is not expired")
	}

	tok = iss.MustIssue(claims, IssueOptions{OmitKeyID: true})
	if _, ok := header(t, tok)["kid"]; ok {
		t.Fatal("kid present with OmitKeyID")
	}
}

func TestRotate(t *testing.T) {
	iss := newIssuer(t, Options{})
	old := iss.ActiveKeyID("RS256")
	kid, err := iss.Rotate("RS256", true)
	if err != nil {
		t.Fatal(err)
	}
	if got := iss.KeyIDs(); strings.Join(got, ",") != old+",es256-2,"+kid {
		t.Fatalf("keys after overlap rotation = %v", got)
	}
	if h := header(t, iss.MustIssue(nil, IssueOptions{})); h["kid"] != kid {
		t.Fatalf("signed with %v, want %s", h["kid"], kid)
	}
	kid2, _ := iss.Rotate("RS256", false)
	set := fetchKeys(t, iss)
	if len(set.Key(kid)) != 0 || len(set.Key(kid2)) != 1 || len(set.Key(old)) != 1 {
		t.Fatalf("keys after replace = %v", iss.KeyIDs())
	}
	iss.RemoveKey(old)
	if set := fetchKeys(t, iss); len(set.Key(old)) != 0 {
		t.Fatal("removed key still published")
	}
}

func TestStopStart(t *testing.T) {
	iss := newIssuer(t, Options{})
	url := iss.DiscoveryURL()
	iss.Stop()
	if _, err := iss.HTTPClient().Get(url); err == nil {
		t.Fatal("issuer answered while stopped")
	}
	if err := iss.Start(); err != nil {
		t.Fatal(err)
	}
	if iss.DiscoveryURL() != url {
		t.Fatalf("URL changed across restart: %s → %s", url, iss.DiscoveryURL())
	}
	var doc map[string]any
	getJSON(t, iss.HTTPClient(), url, &doc)

	iss.SetJWKSFailure(true)
	resp, err := iss.HTTPClient().Get(iss.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("failing JWKS answered %s", resp.Status)
	}
}

func TestShapes(t *testing.T) {
	kc := KeycloakClaims(KeycloakUser{
		Username: "bob", ClientID: "pgproxy", Audience: []string{"account"},
		RealmRoles: []string{"db_reader"}, ClientRoles: map[string][]string{"pgproxy": {"analyst"}},
	})
	if aud := kc["aud"].([]string); len(aud) != 2 {
		t.Fatalf("keycloak aud = %v", kc["aud"])
	}
	if kc["realm_access"].(map[string]any)["roles"].([]string)[0] != "db_reader" {
		t.Fatalf("realm roles = %v", kc["realm_access"])
	}
	en := EntraClaims(EntraUser{TenantID: "t1", UPN: "carol@contoso.com", Audience: "api://pgproxy", Roles: []string{"Reader"}})
	if en["iss"] != "https://sts.windows.net/t1/" || en["upn"] != "carol@contoso.com" || en["ver"] != "1.0" {
		t.Fatalf("entra v1 = %v", en)
	}
	en2 := EntraClaims(EntraUser{TenantID: "t1", UPN: "carol@contoso.com", V2: true})
	if _, ok := en2["iss"]; ok || en2["preferred_username"] != "carol@contoso.com" {
		t.Fatalf("entra v2 = %v", en2)
	}
}

func TestDocumentIssuer(t *testing.T) {
	iss := newIssuer(t, Options{DocumentIssuer: EntraIssuerV1("t1"), Path: "/t1"})
	var doc struct{ Issuer string }
	getJSON(t, iss.HTTPClient(), iss.DiscoveryURL(), &doc)
	if doc.Issuer != "https://sts.windows.net/t1/" || !strings.HasSuffix(iss.URL(), "/t1") {
		t.Fatalf("issuer %q at %q", doc.Issuer, iss.URL())
	}
}
