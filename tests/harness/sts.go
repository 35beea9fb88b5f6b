package harness

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// AWSAccount is the identity side of the AWS stand-ins: the account's own
// access key, the roles STS may hand out, and the keys it issued. The RDS
// and ElastiCache stand-ins ask it whether a signing key is known. Methods
// are safe for concurrent use.
type AWSAccount struct {
	Region string
	// Own is the account's long-lived key (AWS_ACCESS_KEY_ID in Env).
	Own AWSKey

	mu       sync.Mutex
	keys     map[string]AWSKey
	roles    map[string]string // role ARN -> external ID it requires ("" none)
	webToken string            // the accepted web identity token (IRSA)
	lifetime time.Duration
	down     bool
	calls    []STSCall

	// The Redshift API's state (redshift.go).
	clusters   map[string]bool
	workgroups map[string]bool
	dbLifetime time.Duration
	dbCreds    []DBCredential
}

// STSCall is a request the STS stand-in answered.
type STSCall struct {
	Action, RoleARN, SessionName, ExternalID string
	// Caller is the access key that signed the request (empty for
	// AssumeRoleWithWebIdentity, which is not signed).
	Caller string
	// Issued is the key handed out (empty when refused).
	Issued string
	At     time.Time
}

// NewAWSAccount makes an account in region with a fresh long-lived key.
// Issued credentials last an hour unless SetLifetime says otherwise.
func NewAWSAccount(region string) *AWSAccount {
	a := &AWSAccount{Region: region, keys: map[string]AWSKey{}, roles: map[string]string{}, lifetime: time.Hour,
		clusters: map[string]bool{}, workgroups: map[string]bool{}, dbLifetime: time.Hour}
	a.Own = AWSKey{ID: "AKIA" + randomUpper(16), Secret: randomHex(20)}
	a.keys[a.Own.ID] = a.Own
	return a
}

// Env is the environment of a process whose default AWS chain finds the
// account's own key and nothing else (no profile files, no instance
// metadata).
func (a *AWSAccount) Env() map[string]string {
	return map[string]string{
		"AWS_ACCESS_KEY_ID": a.Own.ID, "AWS_SECRET_ACCESS_KEY": a.Own.Secret,
		"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_PROFILE": "",
	}
}

// AllowRole lets AssumeRole hand out arn, with externalID required when set.
func (a *AWSAccount) AllowRole(arn, externalID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.roles[arn] = externalID
}

// AllowWebIdentity lets AssumeRoleWithWebIdentity hand out the roles
// AllowRole allows for this token (the projected service account token of
// IRSA).
func (a *AWSAccount) AllowWebIdentity(token string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.webToken = token
}

// SetLifetime sets how long the credentials STS issues from now on last.
func (a *AWSAccount) SetLifetime(d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lifetime = d
}

// SetSTSDown makes STS answer every request with 503 ServiceUnavailable
// (down) or answer again.
func (a *AWSAccount) SetSTSDown(down bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.down = down
}

// Lookup returns a known key by id.
func (a *AWSAccount) Lookup(id string) (AWSKey, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	k, ok := a.keys[id]
	return k, ok
}

// STSCalls returns the requests answered so far.
func (a *AWSAccount) STSCalls() []STSCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]STSCall(nil), a.calls...)
}

// StartSTS serves the STS query API (AssumeRole, AssumeRoleWithWebIdentity,
// GetCallerIdentity) for a on a loopback HTTP port, answering with STS's
// XML documents, and returns its URL: give it to the SDK as
// AWS_ENDPOINT_URL_STS. It stops in cleanup.
func StartSTS(t testing.TB, a *AWSAccount) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(a.serveSTS))
	t.Cleanup(srv.Close)
	return srv.URL
}

type stsCredentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type stsAssumed struct {
	Arn           string `xml:"Arn"`
	AssumedRoleID string `xml:"AssumedRoleId"`
}

type stsResult struct {
	Credentials     stsCredentials `xml:"Credentials"`
	AssumedRoleUser stsAssumed     `xml:"AssumedRoleUser"`
}

func (a *AWSAccount) serveSTS(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
		stsError(w, http.StatusBadRequest, "Sender", "InvalidRequest", "POST a form")
		return
	}
	action := r.PostForm.Get("Action")
	call := STSCall{Action: action, RoleARN: r.PostForm.Get("RoleArn"), SessionName: r.PostForm.Get("RoleSessionName"),
		ExternalID: r.PostForm.Get("ExternalId"), At: time.Now()}
	a.mu.Lock()
	defer a.mu.Unlock()
	defer func() { a.calls = append(a.calls, call) }()
	if a.down {
		stsError(w, http.StatusServiceUnavailable, "Receiver", "ServiceUnavailable", "the STS stand-in is down")
		return
	}
	switch action {
	case "AssumeRole", "GetCallerIdentity":
		caller, err := a.signer(r, "sts")
		if err != nil {
			stsError(w, http.StatusForbidden, "Sender", "InvalidClientTokenId", err.Error())
			return
		}
		call.Caller = caller
		if action == "GetCallerIdentity" {
			w.Header().Set("Content-Type", "text/xml")
			fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>`+
				`<Arn>arn:aws:iam::111122223333:user/pgproxy</Arn><UserId>%s</UserId><Account>111122223333</Account>`+
				`</GetCallerIdentityResult><ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></GetCallerIdentityResponse>`,
				caller, randomHex(8))
			return
		}
	case "AssumeRoleWithWebIdentity":
		if a.webToken == "" || r.PostForm.Get("WebIdentityToken") != a.webToken {
			stsError(w, http.StatusBadRequest, "Sender", "InvalidIdentityToken", "the web identity token is not accepted")
			return
		}
	default:
		stsError(w, http.StatusBadRequest, "Sender", "InvalidAction", "unknown action "+action)
		return
	}
	want, ok := a.roles[call.RoleARN]
	if !ok {
		stsError(w, http.StatusForbidden, "Sender", "AccessDenied", "not authorized to perform sts:AssumeRole on "+call.RoleARN)
		return
	}
	if want != "" && call.ExternalID != want {
		stsError(w, http.StatusForbidden, "Sender", "AccessDenied", "the external ID does not match the role's trust policy")
		return
	}
	if len(call.SessionName) < 2 {
		stsError(w, http.StatusBadRequest, "Sender", "ValidationError", "RoleSessionName must be 2 to 64 characters")
		return
	}
	key := AWSKey{ID: "ASIA" + randomUpper(16), Secret: randomHex(20), Token: randomHex(32),
		Expires: time.Now().Add(a.lifetime).UTC().Truncate(time.Second), Role: call.RoleARN}
	a.keys[key.ID] = key
	call.Issued = key.ID
	res := stsResult{
		Credentials: stsCredentials{AccessKeyID: key.ID, SecretAccessKey: key.Secret, SessionToken: key.Token,
			Expiration: key.Expires.Format(time.RFC3339)},
		AssumedRoleUser: stsAssumed{Arn: call.RoleARN + "/" + call.SessionName, AssumedRoleID: "AROA" + randomUpper(12) + ":" + call.SessionName},
	}
	body, _ := xml.Marshal(res)
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<%sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><%sResult>%s</%sResult>`+
		`<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>`,
		action, action, strings.TrimSuffix(strings.TrimPrefix(string(body), "<stsResult>"), "</stsResult>"), action, randomHex(8), action)
}

// signer returns the access key of a SigV4 Authorization header, checked
// to be a key of the account with the STS scope of its region. (The
// header's signature itself is not recomputed here; the presigned tokens
// the RDS and ElastiCache stand-ins take are checked in full.)
func (a *AWSAccount) signer(r *http.Request, service string) (string, error) {
	h := r.Header.Get("Authorization")
	_, rest, ok := strings.Cut(h, "Credential=")
	if !strings.HasPrefix(h, "AWS4-HMAC-SHA256 ") || !ok {
		return "", fmt.Errorf("no SigV4 Authorization header")
	}
	cred, _, _ := strings.Cut(rest, ",")
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[2] != a.Region || scope[3] != service {
		return "", fmt.Errorf("credential scope %q, want <key>/<date>/%s/%s/aws4_request", cred, a.Region, service)
	}
	k, ok := a.keys[scope[0]]
	if !ok {
		return "", fmt.Errorf("the security token included in the request is invalid")
	}
	if !k.Expires.IsZero() && time.Now().After(k.Expires) {
		return "", fmt.Errorf("the security token included in the request is expired")
	}
	if k.Token != "" && r.Header.Get("X-Amz-Security-Token") != k.Token {
		return "", fmt.Errorf("the security token does not match the key")
	}
	return k.ID, nil
}

func stsError(w http.ResponseWriter, status int, typ, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	var esc strings.Builder
	_ = xml.EscapeText(&esc, []byte(msg))
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>%s</Type><Code>%s</Code>`+
		`<Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`, typ, code, esc.String(), randomHex(8))
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomUpper(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
