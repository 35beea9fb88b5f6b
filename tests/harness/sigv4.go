package harness

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// This file checks AWS Signature Version 4 presigned requests the way the
// services do, written from the SigV4 specification and independent of the
// SDK that signs them, so that a token the proxy makes is checked by other
// code than the one that made it.

// AWSKey is an access key the stand-ins accept: long-lived (no Token) or
// issued by the STS stand-in (with a session token and an expiry).
type AWSKey struct {
	ID, Secret, Token string
	Expires           time.Time // zero: does not expire
	// Role is the ARN of the assumed role (empty for the account's own key).
	Role string
}

// Presigned is a verified presigned request.
type Presigned struct {
	Host  string
	Query url.Values
	Key   AWSKey
	// Signed is the signing time; Expires the end of the token's validity.
	Signed, Expires time.Time
}

// VerifyPresigned checks token, a presigned GET of the path / without
// scheme ("host:port?Action=…" as RDS takes it, "host/?Action=…" as
// ElastiCache does), for service in region at now: the algorithm, the credential scope,
// a known key and its session token, the validity window, and the
// signature. lookup finds a key by its id.
func VerifyPresigned(token, service, region string, now time.Time, lookup func(id string) (AWSKey, bool)) (Presigned, error) {
	var p Presigned
	host, query, ok := strings.Cut(token, "?")
	host = strings.TrimSuffix(host, "/")
	if !ok || host == "" || strings.ContainsAny(host, "/ ") {
		return p, errors.New("not host?query or host/?query")
	}
	p.Host = host
	q, err := url.ParseQuery(query)
	if err != nil {
		return p, fmt.Errorf("query: %w", err)
	}
	for k, vs := range q {
		if len(vs) != 1 {
			return p, fmt.Errorf("parameter %s given %d times", k, len(vs))
		}
	}
	p.Query = q
	if q.Get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" {
		return p, fmt.Errorf("algorithm %q", q.Get("X-Amz-Algorithm"))
	}
	if q.Get("X-Amz-SignedHeaders") != "host" {
		return p, fmt.Errorf("signed headers %q, want host", q.Get("X-Amz-SignedHeaders"))
	}
	scope := strings.Split(q.Get("X-Amz-Credential"), "/")
	if len(scope) != 5 || scope[2] != region || scope[3] != service || scope[4] != "aws4_request" {
		return p, fmt.Errorf("credential scope %q, want <key>/<date>/%s/%s/aws4_request", q.Get("X-Amz-Credential"), region, service)
	}
	key, ok := lookup(scope[0])
	if !ok {
		return p, fmt.Errorf("unknown access key %s", scope[0])
	}
	p.Key = key
	if key.Token != "" && q.Get("X-Amz-Security-Token") != key.Token {
		return p, errors.New("security token does not match the key")
	}
	if key.Token == "" && q.Has("X-Amz-Security-Token") {
		return p, errors.New("security token with a long-lived key")
	}
	signed, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil {
		return p, fmt.Errorf("date %q", q.Get("X-Amz-Date"))
	}
	if scope[1] != signed.Format("20060102") {
		return p, errors.New("scope date differs from X-Amz-Date")
	}
	secs, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil || secs < 1 || secs > 900 {
		return p, fmt.Errorf("expires %q, want 1 to 900 seconds", q.Get("X-Amz-Expires"))
	}
	p.Signed, p.Expires = signed, signed.Add(time.Duration(secs)*time.Second)
	if signed.After(now.Add(5 * time.Minute)) {
		return p, errors.New("signed in the future")
	}
	if !now.Before(p.Expires) {
		return p, fmt.Errorf("expired at %s", p.Expires.Format(time.RFC3339))
	}
	if !key.Expires.IsZero() && !now.Before(key.Expires) {
		return p, fmt.Errorf("signing key expired at %s", key.Expires.Format(time.RFC3339))
	}
	// The signed host leaves out the scheme's default port (the tokens are
	// signed as https:// or http:// URLs).
	signedHost := strings.TrimSuffix(strings.TrimSuffix(p.Host, ":443"), ":80")
	canonical := strings.Join([]string{"GET", "/", canonicalQuery(q), "host:" + signedHost + "\n", "host",
		hex.EncodeToString(sha256Sum(""))}, "\n")
	toSign := strings.Join([]string{"AWS4-HMAC-SHA256", q.Get("X-Amz-Date"), strings.Join(scope[1:], "/"),
		hex.EncodeToString(sha256Sum(canonical))}, "\n")
	k := hmacSum([]byte("AWS4"+key.Secret), scope[1])
	for _, part := range scope[2:] {
		k = hmacSum(k, part)
	}
	want := hex.EncodeToString(hmacSum(k, toSign))
	if !hmac.Equal([]byte(want), []byte(q.Get("X-Amz-Signature"))) {
		return p, errors.New("signature does not match")
	}
	return p, nil
}

// canonicalQuery is SigV4's canonical query string of q without the
// signature: keys sorted, keys and values URI-encoded.
func canonicalQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		if k != "X-Amz-Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = awsEscape(k) + "=" + awsEscape(q.Get(k))
	}
	return strings.Join(parts, "&")
}

// awsEscape percent-encodes everything but SigV4's unreserved characters.
func awsEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func sha256Sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func hmacSum(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
