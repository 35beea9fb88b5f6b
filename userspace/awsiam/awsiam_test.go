package awsiam

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/pgproxy/pgproxy/tests/harness"
)

func static(k harness.AWSKey) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(k.ID, k.Secret, k.Token)
}

// TestRDSTokenVerifies checks the RDS token (feature/rds/auth's) with the
// harness's own SigV4 verifier: it passes as signed, and fails with another
// region, host, user, or a changed character.
func TestRDSTokenVerifies(t *testing.T) {
	acct := harness.NewAWSAccount("eu-west-1")
	tok, err := RDSToken(context.Background(), static(acct.Own), "db.example.internal:5432", "eu-west-1", "iam_user")
	if err != nil {
		t.Fatal(err)
	}
	p, err := harness.VerifyPresigned(tok, "rds-db", "eu-west-1", time.Now(), acct.Lookup)
	if err != nil {
		t.Fatalf("token refused: %v", err)
	}
	if p.Host != "db.example.internal:5432" || p.Query.Get("DBUser") != "iam_user" || p.Query.Get("Action") != "connect" ||
		p.Expires.Sub(p.Signed) != TokenLifetime {
		t.Errorf("token for %s, user %q, action %q, valid %s", p.Host, p.Query.Get("DBUser"), p.Query.Get("Action"), p.Expires.Sub(p.Signed))
	}
	if _, err := harness.VerifyPresigned(tok, "rds-db", "us-east-1", time.Now(), acct.Lookup); err == nil {
		t.Error("a token of eu-west-1 passed for us-east-1")
	}
	if _, err := harness.VerifyPresigned(tok, "rds-db", "eu-west-1", time.Now().Add(16*time.Minute), acct.Lookup); err == nil {
		t.Error("the token passed after 16 minutes")
	}
	for _, bad := range []string{
		strings.Replace(tok, "iam_user", "iam_usex", 1),
		strings.Replace(tok, "db.example.internal", "db.example.interna1", 1),
		tok[:len(tok)-1] + map[bool]string{true: "0", false: "1"}[tok[len(tok)-1] != '0'],
	} {
		if _, err := harness.VerifyPresigned(bad, "rds-db", "eu-west-1", time.Now(), acct.Lookup); err == nil {
			t.Errorf("a changed token passed: %.60s…", bad)
		}
	}
	if _, err := RDSToken(context.Background(), static(acct.Own), "db.example.internal", "eu-west-1", "iam_user"); err == nil {
		t.Error("an endpoint without a port was signed")
	}
}

func TestElastiCacheTokenVerifies(t *testing.T) {
	acct := harness.NewAWSAccount("us-east-2")
	now := time.Now()
	for _, serverless := range []bool{false, true} {
		tok, until, err := ElastiCacheToken(context.Background(), static(acct.Own), "decisions-cache", "us-east-2", "pgproxy-iam", serverless, now)
		if err != nil {
			t.Fatal(err)
		}
		if !until.Equal(now.Add(TokenLifetime)) {
			t.Errorf("a token of a long-lived key is good until %s, want %s", until, now.Add(TokenLifetime))
		}
		p, err := harness.VerifyPresigned(tok, "elasticache", "us-east-2", now, acct.Lookup)
		if err != nil {
			t.Fatalf("serverless=%v: token refused: %v", serverless, err)
		}
		if p.Host != "decisions-cache" || p.Query.Get("User") != "pgproxy-iam" || p.Query.Get("Action") != "connect" ||
			(p.Query.Get("ResourceType") == "ServerlessCache") != serverless {
			t.Errorf("serverless=%v: token for %s, user %q, action %q, resource type %q", serverless, p.Host,
				p.Query.Get("User"), p.Query.Get("Action"), p.Query.Get("ResourceType"))
		}
		if _, err := harness.VerifyPresigned(tok, "rds-db", "us-east-2", now, acct.Lookup); err == nil {
			t.Error("an elasticache token passed as rds-db")
		}
	}
	// Session credentials that expire in 2 minutes bound the token.
	exp := now.Add(2 * time.Minute)
	p := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "ASIAX", SecretAccessKey: "s", SessionToken: "t", CanExpire: true, Expires: exp}, nil
	})
	_, until, err := ElastiCacheToken(context.Background(), p, "c", "us-east-2", "u", false, now)
	if err != nil || !until.Equal(exp) {
		t.Errorf("token of credentials expiring at %s good until %s (%v)", exp, until, err)
	}
	fail := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return aws.Credentials{}, errors.New("no creds") })
	if _, _, err := ElastiCacheToken(context.Background(), fail, "c", "us-east-2", "u", false, now); err == nil || !strings.Contains(err.Error(), "no creds") {
		t.Errorf("credential failure: %v", err)
	}
}

// TestCacheRefreshesBeforeExpiry checks the credential cache on a fake
// clock: kept until four fifths of a short life (or 5 minutes before a long
// one's end), fetched again after, a failure not kept, one fetch for
// concurrent callers.
func TestCacheRefreshesBeforeExpiry(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	var fetches atomic.Int32
	var life atomic.Int64
	life.Store(int64(20 * time.Second))
	var failing atomic.Bool
	release := make(chan struct{})
	close(release)
	var gate atomic.Pointer[chan struct{}]
	gate.Store(&release)
	p := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		<-*gate.Load()
		fetches.Add(1)
		if failing.Load() {
			return aws.Credentials{}, errors.New("sts down")
		}
		return aws.Credentials{AccessKeyID: "K", SecretAccessKey: "S", CanExpire: true, Expires: now().Add(time.Duration(life.Load()))}, nil
	})
	c := NewCache(p)
	c.now = now
	get := func() error { _, err := c.Retrieve(context.Background()); return err }
	advance := func(d time.Duration) { clock.Add(int64(d)) }

	if err := get(); err != nil || fetches.Load() != 1 {
		t.Fatalf("first fetch: %v, %d fetches", err, fetches.Load())
	}
	advance(15 * time.Second)
	if get(); fetches.Load() != 1 {
		t.Errorf("fetched again at 15 s of a 20 s life")
	}
	advance(2 * time.Second)
	if get(); fetches.Load() != 2 {
		t.Errorf("not fetched again at 17 s of a 20 s life (%d fetches)", fetches.Load())
	}
	life.Store(int64(time.Hour))
	advance(20 * time.Second)
	get()
	advance(54 * time.Minute)
	if get(); fetches.Load() != 3 {
		t.Errorf("an hour's credentials fetched again after 54 min (%d fetches)", fetches.Load())
	}
	// STS fails 4 minutes before the end: the good credentials are served,
	// and fetched again 30 s later, not at every login.
	advance(2 * time.Minute)
	failing.Store(true)
	if err := get(); err != nil || fetches.Load() != 4 || c.LastError() == nil {
		t.Errorf("a failed refresh with 4 min left: %v, %d fetches, last error %v", err, fetches.Load(), c.LastError())
	}
	if err := get(); err != nil || fetches.Load() != 4 {
		t.Errorf("right after a failed refresh: %v, %d fetches", err, fetches.Load())
	}
	advance(31 * time.Second)
	if err := get(); err != nil || fetches.Load() != 5 {
		t.Errorf("31 s after a failed refresh: %v, %d fetches", err, fetches.Load())
	}
	// Past the end (less the margin) the error is the caller's, and not kept.
	advance(4 * time.Minute)
	if err := get(); err == nil || fetches.Load() != 6 {
		t.Errorf("expired and STS down: %v, %d fetches", err, fetches.Load())
	}
	if err := get(); err == nil || fetches.Load() != 7 {
		t.Errorf("a failure was kept: %v, %d fetches", err, fetches.Load())
	}
	failing.Store(false)
	advance(time.Hour)
	wait := make(chan struct{})
	gate.Store(&wait)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); get() }()
	}
	time.Sleep(50 * time.Millisecond)
	close(wait)
	wg.Wait()
	if fetches.Load() != 8 {
		t.Errorf("8 concurrent callers made %d fetches, want 1", fetches.Load()-7)
	}
	if c.LastError() != nil {
		t.Errorf("last error %v after a good fetch", c.LastError())
	}
	// A caller that gives up gets its context's error; the fetch goes on.
	advance(2 * time.Hour)
	block := make(chan struct{})
	gate.Store(&block)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Retrieve(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("abandoned retrieve: %v", err)
	}
	close(block)
	for deadline := time.Now().Add(5 * time.Second); fetches.Load() != 9 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the fetch stores what it got
	if err := get(); err != nil || fetches.Load() != 9 {
		t.Errorf("the abandoned fetch did not go on to fill the cache: %v, %d fetches", err, fetches.Load())
	}
}

// selfCaching is a provider that caches itself, as the SDK's default chain
// does: an early fetch must tell it to drop what it holds.
type selfCaching struct {
	invalidated, fetched atomic.Int32
}

func (p *selfCaching) Invalidate() { p.invalidated.Add(1) }

func (p *selfCaching) Retrieve(context.Context) (aws.Credentials, error) {
	n := p.fetched.Add(1)
	return aws.Credentials{AccessKeyID: fmt.Sprint("K", n), SecretAccessKey: "S", CanExpire: true, Expires: time.Now().Add(100 * time.Millisecond)}, nil
}

func TestCacheInvalidatesASelfCachingProvider(t *testing.T) {
	p := &selfCaching{}
	c := NewCache(p)
	first, _ := c.Retrieve(context.Background())
	if p.invalidated.Load() != 0 {
		t.Error("the first fetch invalidated the provider")
	}
	time.Sleep(90 * time.Millisecond) // past four fifths of 100 ms
	second, _ := c.Retrieve(context.Background())
	if p.invalidated.Load() != 1 || second.AccessKeyID == first.AccessKeyID {
		t.Errorf("early refresh: %d invalidations, keys %s then %s", p.invalidated.Load(), first.AccessKeyID, second.AccessKeyID)
	}
}

// TestAssumeRoleThroughSTS runs the SDK's default chain and AssumeRole
// against the harness's STS stand-in: the external ID and session name
// reach STS, the role's keys sign, they are fetched again before they
// expire, and STS down is an error that names STS.
func TestAssumeRoleThroughSTS(t *testing.T) {
	acct := harness.NewAWSAccount("eu-central-1")
	role := "arn:aws:iam::444455556666:role/pgproxy-rds"
	acct.AllowRole(role, "ext-42")
	acct.SetLifetime(3 * time.Second)
	for k, v := range acct.Env() {
		t.Setenv(k, v)
	}
	t.Setenv("AWS_ENDPOINT_URL_STS", harness.StartSTS(t, acct))
	ctx := context.Background()
	creds, err := NewCredentials(ctx, Identity{Region: "eu-central-1", RoleARN: role, ExternalID: "ext-42", SessionName: "pgproxy-test"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(acct.STSCalls()); n != 0 {
		t.Errorf("NewCredentials called STS %d times; credentials are fetched at the first use", n)
	}
	tok, err := RDSToken(ctx, creds, "db:5432", "eu-central-1", "iam_user")
	if err != nil {
		t.Fatal(err)
	}
	p, err := harness.VerifyPresigned(tok, "rds-db", "eu-central-1", time.Now(), acct.Lookup)
	if err != nil || p.Key.Role != role {
		t.Fatalf("token signed by %+v: %v", p.Key, err)
	}
	calls := acct.STSCalls()
	if len(calls) != 1 || calls[0].Action != "AssumeRole" || calls[0].ExternalID != "ext-42" ||
		calls[0].SessionName != "pgproxy-test" || calls[0].Caller != acct.Own.ID {
		t.Fatalf("STS calls: %+v", calls)
	}
	if _, err := RDSToken(ctx, creds, "db:5432", "eu-central-1", "iam_user"); err != nil || len(acct.STSCalls()) != 1 {
		t.Errorf("second token: %v, %d STS calls (want the cached role)", err, len(acct.STSCalls()))
	}
	time.Sleep(2600 * time.Millisecond) // past four fifths of the 3 s life
	tok2, err := RDSToken(ctx, creds, "db:5432", "eu-central-1", "iam_user")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := harness.VerifyPresigned(tok2, "rds-db", "eu-central-1", time.Now(), acct.Lookup)
	if err != nil || p2.Key.ID == p.Key.ID || len(acct.STSCalls()) != 2 {
		t.Errorf("after 2.6 s: key %s (was %s), %d STS calls, %v", p2.Key.ID, p.Key.ID, len(acct.STSCalls()), err)
	}

	acct.SetSTSDown(true)
	time.Sleep(2600 * time.Millisecond)
	ctx2, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := RDSToken(ctx2, creds, "db:5432", "eu-central-1", "iam_user"); err == nil ||
		!strings.Contains(err.Error(), "STS") || strings.Contains(err.Error(), acct.Own.Secret) {
		t.Errorf("STS down: %v", err)
	} else if r := Reason(err); r != "STS AssumeRole: ServiceUnavailable" {
		t.Errorf("STS down: the client is told %q", r)
	}
	acct.SetSTSDown(false)
	if _, err := RDSToken(ctx, creds, "db:5432", "eu-central-1", "iam_user"); err != nil {
		t.Errorf("STS back: %v", err)
	}

	wrong, err := NewCredentials(ctx, Identity{Region: "eu-central-1", RoleARN: role, ExternalID: "ext-41", SessionName: "pgproxy-test"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = RDSToken(ctx, wrong, "db:5432", "eu-central-1", "iam_user")
	if err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("wrong external ID: %v", err)
	}
	if r := Reason(err); r != "STS AssumeRole: AccessDenied" || strings.Contains(r, "444455556666") {
		t.Errorf("wrong external ID: the client is told %q", r)
	}
	if r := Reason(errors.New("failed to refresh cached credentials, no EC2 IMDS role found")); !strings.Contains(r, "no AWS credentials") {
		t.Errorf("no credentials: the client is told %q", r)
	}
}

// TestRedshiftCredentials runs GetClusterCredentials and Redshift
// Serverless GetCredentials against the harness's Redshift API stand-in:
// one fetch for many logins, a new one before expiry and after a refusal,
// the serverless user named by the identity.
func TestRedshiftCredentials(t *testing.T) {
	acct := harness.NewAWSAccount("eu-west-1")
	acct.AllowRedshiftCluster("analytics")
	acct.AllowRedshiftWorkgroup("reports")
	for k, v := range acct.Env() {
		t.Setenv(k, v)
	}
	api := harness.StartRedshiftAPI(t, acct)
	t.Setenv("AWS_ENDPOINT_URL_REDSHIFT", api)
	t.Setenv("AWS_ENDPOINT_URL_REDSHIFT_SERVERLESS", api)
	ctx := context.Background()
	id := Identity{Region: "eu-west-1", SessionName: "pgproxy"}
	if _, err := NewRedshift(ctx, id, "", ""); err == nil {
		t.Error("neither cluster nor workgroup was accepted")
	}
	r, err := NewRedshift(ctx, id, "analytics", "")
	if err != nil {
		t.Fatal(err)
	}
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	r.now = func() time.Time { return time.Unix(0, clock.Load()) }
	u, pw, err := r.Token(ctx, "c:5439", "pgproxy_iam")
	if err != nil || u != "IAM:pgproxy_iam" || pw == "" {
		t.Fatalf("first login: %q %v", u, err)
	}
	if u2, pw2, _ := r.Token(ctx, "c:5439", "pgproxy_iam"); u2 != u || pw2 != pw || len(acct.DBCredentials()) != 1 {
		t.Errorf("second login asked again: %d credentials", len(acct.DBCredentials()))
	}
	clock.Add(int64(56 * time.Minute)) // an hour's credentials: fetched again 5 minutes before the end
	if _, pw3, _ := r.Token(ctx, "c:5439", "pgproxy_iam"); pw3 == pw || len(acct.DBCredentials()) != 2 {
		t.Errorf("after 56 minutes: %d credentials", len(acct.DBCredentials()))
	}
	if hint := r.Refused("c:5439", "IAM:pgproxy_iam", errors.New("28000")); !strings.Contains(hint, "redshift:GetClusterCredentials") {
		t.Errorf("hint %q", hint)
	}
	if _, _, err := r.Token(ctx, "c:5439", "pgproxy_iam"); err != nil || len(acct.DBCredentials()) != 3 {
		t.Errorf("after a refusal: %d credentials, %v", len(acct.DBCredentials()), err)
	}
	missing, _ := NewRedshift(ctx, id, "nope", "")
	if _, _, err := missing.Token(ctx, "c:5439", "pgproxy_iam"); err == nil || Reason(err) != "Redshift GetClusterCredentials: ClusterNotFound" {
		t.Errorf("unknown cluster: %v (%q)", err, Reason(err))
	}
	s, err := NewRedshift(ctx, id, "", "reports")
	if err != nil {
		t.Fatal(err)
	}
	if u, pw, err := s.Token(ctx, "w:5439", "IAM"); err != nil || u != "IAM:pgproxy" || pw == "" {
		t.Errorf("serverless: %q %v", u, err)
	}
}

// TestRDSTokenOnTheDefaultPort checks a token for port 443, whose signed
// host leaves the port out.
func TestRDSTokenOnTheDefaultPort(t *testing.T) {
	acct := harness.NewAWSAccount("eu-west-1")
	tok, err := RDSToken(context.Background(), static(acct.Own), "db.example:443", "eu-west-1", "u")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := harness.VerifyPresigned(tok, "rds-db", "eu-west-1", time.Now(), acct.Lookup); err != nil {
		t.Errorf("token for port 443 refused: %v", err)
	}
}
