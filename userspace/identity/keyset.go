package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// maxJWKSBytes bounds the key set document.
const maxJWKSBytes = 1 << 20

// minRSABits is the smallest RSA key accepted from the issuer.
const minRSABits = 2048

// errRateLimited means a JWKS download was wanted but the last one is too
// recent.
var errRateLimited = errors.New("JWKS refresh rate-limited")

// keySet holds the issuer's public signing keys. It implements go-oidc's
// KeySet interface. Unlike go-oidc's RemoteKeySet, a kid it does not know
// triggers a download only when none happened in the last minInterval, so a
// flood of tokens with made-up kids costs the issuer at most one request per
// interval. Concurrent callers share one download.
type keySet struct {
	url         string
	client      *http.Client
	algs        []jose.SignatureAlgorithm
	minInterval time.Duration
	now         func() time.Time

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	loaded    bool      // one download succeeded
	lastFetch time.Time // start of the last download, successful or not
	inflight  *fetchCall
}

// fetchCall is one download that several goroutines may wait for.
type fetchCall struct {
	done chan struct{}
	err  error
}

// newKeySet returns an empty key set for url.
func newKeySet(url string, client *http.Client, algs []jose.SignatureAlgorithm, minInterval time.Duration, now func() time.Time) *keySet {
	return &keySet{url: url, client: client, algs: algs, minInterval: minInterval, now: now}
}

// Loaded reports whether keys were downloaded at least once.
func (ks *keySet) Loaded() bool {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.loaded
}

// refresh downloads the key set unless the last download started less than
// minInterval ago, in which case it returns errRateLimited. A caller that
// arrives while a download is running waits for it and shares its result.
func (ks *keySet) refresh(ctx context.Context) error {
	ks.mu.Lock()
	if call := ks.inflight; call != nil {
		ks.mu.Unlock()
		return call.wait(ctx)
	}
	if !ks.lastFetch.IsZero() && ks.now().Sub(ks.lastFetch) < ks.minInterval {
		ks.mu.Unlock()
		return errRateLimited
	}
	call := &fetchCall{done: make(chan struct{})}
	ks.inflight = call
	ks.lastFetch = ks.now()
	ks.mu.Unlock()

	// The download runs on its own goroutine so that a caller whose context
	// ends early does not cut it short for the others.
	go ks.download(context.WithoutCancel(ctx), call)
	return call.wait(ctx)
}

// download fetches and installs the key set, then releases waiters.
func (ks *keySet) download(ctx context.Context, call *fetchCall) {
	keys, err := ks.fetch(ctx)
	ks.mu.Lock()
	if err == nil {
		ks.keys = keys
		ks.loaded = true
	}
	ks.inflight = nil
	ks.mu.Unlock()
	call.err = err
	close(call.done)
}

// wait blocks until the download ends or ctx is done.
func (c *fetchCall) wait(ctx context.Context) error {
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fetch performs one HTTP download of the key set.
func (ks *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch JWKS: %s", resp.Status)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("fetch JWKS: document larger than %d bytes", maxJWKSBytes)
	}
	return parseJWKS(body)
}

// parseJWKS decodes a key set, keeping only public asymmetric signing keys.
// Keys it cannot use are skipped rather than failing the whole set, as an
// issuer may publish encryption keys or key types we do not support.
func parseJWKS(body []byte) ([]jose.JSONWebKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decode JWKS: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if !k.IsPublic() {
			continue
		}
		switch pub := k.Key.(type) {
		case *rsa.PublicKey:
			if pub.N.BitLen() < minRSABits {
				continue
			}
		case *ecdsa.PublicKey, ed25519.PublicKey:
		default:
			continue // symmetric ("oct") and anything else
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS holds no usable signing key")
	}
	return keys, nil
}

// candidates returns the keys that may have signed a token with kid and alg.
// A token without kid is tried against every key.
func (ks *keySet) candidates(kid string, alg jose.SignatureAlgorithm) []jose.JSONWebKey {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	var out []jose.JSONWebKey
	for _, k := range ks.keys {
		if kid != "" && k.KeyID != kid {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != string(alg) {
			continue
		}
		if !keyFitsAlg(k.Key, alg) {
			continue
		}
		out = append(out, k)
	}
	return out
}

// keyFitsAlg reports whether a public key type can verify alg.
func keyFitsAlg(key any, alg jose.SignatureAlgorithm) bool {
	switch key.(type) {
	case *rsa.PublicKey:
		switch alg {
		case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
			return true
		}
	case *ecdsa.PublicKey:
		switch alg {
		case jose.ES256, jose.ES384, jose.ES512:
			return true
		}
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}

// VerifySignature implements go-oidc's KeySet. It returns *Error values
// (unknown_key, bad_signature, issuer_unavailable, malformed_token) and
// records them in the context's verifyOutcome, since go-oidc flattens the
// error into a string.
func (ks *keySet) VerifySignature(ctx context.Context, token string) ([]byte, error) {
	payload, err := ks.verify(ctx, token)
	if err != nil {
		if o, ok := ctx.Value(outcomeKey{}).(*verifyOutcome); ok {
			o.err = err
		}
	}
	return payload, err
}

// verify checks the signature of token against the cached keys, downloading
// the key set (rate-limited) when the kid is unknown.
func (ks *keySet) verify(ctx context.Context, token string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(token, ks.algs)
	if err != nil {
		return nil, refuse(ReasonMalformedToken, err, "password is not a well-formed signed JWT")
	}
	if len(jws.Signatures) != 1 {
		return nil, refuse(ReasonMalformedToken, nil, "token must carry exactly one signature")
	}
	hdr := jws.Signatures[0].Header
	alg := jose.SignatureAlgorithm(hdr.Algorithm)

	keys := ks.candidates(hdr.KeyID, alg)
	if len(keys) == 0 {
		switch err := ks.refresh(ctx); {
		case errors.Is(err, errRateLimited):
			return nil, refuse(ReasonUnknownKey, nil, "token is signed with a key the identity provider does not publish")
		case err != nil:
			return nil, refuse(ReasonIssuerUnavailable, err, "identity provider is unavailable; try again later")
		}
		keys = ks.candidates(hdr.KeyID, alg)
		if len(keys) == 0 {
			return nil, refuse(ReasonUnknownKey, nil, "token is signed with a key the identity provider does not publish")
		}
	}
	for _, k := range keys {
		if payload, err := jws.Verify(k); err == nil {
			return payload, nil
		}
	}
	return nil, refuse(ReasonBadSignature, nil, "token signature is invalid")
}

// outcomeKey is the context key of a *verifyOutcome.
type outcomeKey struct{}

// verifyOutcome carries keySet's typed error past go-oidc, which wraps it
// with %v.
type verifyOutcome struct{ err error }
