package oidcissuer

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// SignMode chooses how Issue signs a token, including the ways an attacker
// might try to get a forged token accepted.
type SignMode int

const (
	// SignValid signs with the issuer's published key for the algorithm.
	SignValid SignMode = iota
	// SignUnknownKey signs with a fresh key under a kid that is not in the
	// JWKS, as after a rotation the validator has not seen yet, or a forger.
	SignUnknownKey
	// SignWrongKey signs with a fresh key but claims the kid of a published
	// key, so the signature does not verify.
	SignWrongKey
	// SignNone produces an unsigned token with "alg": "none".
	SignNone
	// SignHMACPublicKey signs with HS256 using the PEM of the published RSA
	// public key as the HMAC secret (the classic algorithm-confusion attack).
	SignHMACPublicKey
)

// IssueOptions tunes one token. The zero value gives an RS256 token signed
// with the active RS256 key, valid for five minutes.
type IssueOptions struct {
	// Alg is the signing algorithm; default RS256.
	Alg string
	// KeyID signs with this published key instead of the active one for Alg.
	KeyID string
	// OmitKeyID leaves the kid header out.
	OmitKeyID bool
	// Mode selects a valid or a deliberately bad signature.
	Mode SignMode
	// ExpiresIn sets exp relative to now when the claims have none; default
	// five minutes, negative for an already expired token.
	ExpiresIn time.Duration
	// Now replaces the clock used for iat and exp.
	Now time.Time
	// NoDefaults leaves iss, iat, exp and jti alone when they are missing.
	NoDefaults bool
}

// Issue mints a token with the given claims. Unless NoDefaults is set, it
// fills in iss (the issuer URL), iat, exp and jti when they are absent.
func (i *Issuer) Issue(claims map[string]any, opts IssueOptions) (string, error) {
	c := maps.Clone(claims)
	if c == nil {
		c = map[string]any{}
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	if !opts.NoDefaults {
		setDefault(c, "iss", i.URL())
		setDefault(c, "iat", now.Unix())
		ttl := opts.ExpiresIn
		if ttl == 0 {
			ttl = 5 * time.Minute
		}
		setDefault(c, "exp", now.Add(ttl).Unix())
		setDefault(c, "jti", randomID())
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("oidcissuer: claims: %w", err)
	}

	alg := jose.SignatureAlgorithm(opts.Alg)
	if alg == "" {
		alg = jose.RS256
	}
	key, err := i.keyFor(alg, opts.KeyID)
	if err != nil && opts.Mode != SignUnknownKey {
		return "", err
	}

	switch opts.Mode {
	case SignValid:
		return sign(key, kidHeader(key.kid, opts.OmitKeyID), payload)
	case SignUnknownKey, SignWrongKey:
		kid := "unknown-" + randomID()
		if opts.Mode == SignWrongKey {
			kid = key.kid
		}
		forged, err := generateKey(alg, kid)
		if err != nil {
			return "", err
		}
		return sign(forged, kidHeader(kid, opts.OmitKeyID), payload)
	case SignNone:
		return compact(map[string]any{"alg": "none", "typ": "JWT", "kid": key.kid}, payload, nil), nil
	case SignHMACPublicKey:
		der, err := x509.MarshalPKIXPublicKey(key.priv.Public())
		if err != nil {
			return "", fmt.Errorf("oidcissuer: public key: %w", err)
		}
		secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		header := map[string]any{"alg": "HS256", "typ": "JWT", "kid": key.kid}
		signingInput := compact(header, payload, nil)
		signingInput = signingInput[:len(signingInput)-1] // drop the trailing dot
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(signingInput))
		return signingInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), nil
	default:
		return "", fmt.Errorf("oidcissuer: unknown sign mode %d", opts.Mode)
	}
}

// MustIssue is Issue for tests that treat a failure to mint as fatal.
func (i *Issuer) MustIssue(claims map[string]any, opts IssueOptions) string {
	tok, err := i.Issue(claims, opts)
	if err != nil {
		panic(err)
	}
	return tok
}

// keyFor finds the key to sign with: the named kid, else the active key for alg.
func (i *Issuer) keyFor(alg jose.SignatureAlgorithm, kid string) (*signingKey, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if kid != "" {
		for _, k := range i.keys {
			if k.kid == kid {
				return k, nil
			}
		}
		return nil, fmt.Errorf("oidcissuer: no published key %q", kid)
	}
	if k := i.active[alg]; k != nil {
		return k, nil
	}
	if k := i.active[jose.RS256]; k != nil && alg != jose.RS256 {
		// Attack modes (none, HS256) borrow the RSA key's kid.
		return k, nil
	}
	return nil, fmt.Errorf("oidcissuer: no key for %s; call Rotate(%q, true) first", alg, alg)
}

// kidHeader returns the extra protected headers for kid.
func kidHeader(kid string, omit bool) map[jose.HeaderKey]any {
	if omit {
		return nil
	}
	return map[jose.HeaderKey]any{"kid": kid}
}

// sign produces a compact JWS with go-jose.
func sign(k *signingKey, headers map[jose.HeaderKey]any, payload []byte) (string, error) {
	so := (&jose.SignerOptions{}).WithType("JWT")
	for h, v := range headers {
		so = so.WithHeader(h, v)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, so)
	if err != nil {
		return "", fmt.Errorf("oidcissuer: signer: %w", err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("oidcissuer: sign: %w", err)
	}
	return obj.CompactSerialize()
}

// compact assembles header.payload.signature by hand, for tokens go-jose
// refuses to make.
func compact(header map[string]any, payload, sig []byte) string {
	h, _ := json.Marshal(header) // a map of strings always marshals
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(payload) + "." + enc.EncodeToString(sig)
}

// setDefault sets m[k] = v unless k is present.
func setDefault(m map[string]any, k string, v any) {
	if _, ok := m[k]; !ok {
		m[k] = v
	}
}

// randomID returns 16 random hex characters.
func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
