package awsiam

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	rdsauth "github.com/aws/aws-sdk-go-v2/feature/rds/auth"
)

// TokenLifetime is how long RDS and ElastiCache accept a token after it is
// signed.
const TokenLifetime = 15 * time.Minute

// emptySHA256 is the hash of the empty payload of a presigned GET.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// RDSToken is the password of an RDS or Aurora IAM login of dbUser at
// endpoint (host:port, the address the connection goes to) in region,
// signed with creds: a presigned rds-db:connect request, valid for
// TokenLifetime.
func RDSToken(ctx context.Context, creds aws.CredentialsProvider, endpoint, region, dbUser string) (string, error) {
	tok, err := rdsauth.BuildAuthToken(ctx, endpoint, region, dbUser, creds)
	if err != nil {
		return "", fmt.Errorf("RDS IAM token for %s at %s (%s): %w", dbUser, endpoint, region, err)
	}
	return tok, nil
}

// ElastiCacheToken is the AUTH password of an ElastiCache (Redis OSS or
// Valkey) IAM user user on the cache cacheName (replication group or
// serverless cache) in region, signed with creds: a presigned
// elasticache:Connect request, valid for TokenLifetime. Serverless caches
// are named with ResourceType=ServerlessCache. The token is good until the
// time returned: TokenLifetime, or less when the signing credentials
// expire earlier (an assumed role's).
func ElastiCacheToken(ctx context.Context, creds aws.CredentialsProvider, cacheName, region, user string, serverless bool, now time.Time) (string, time.Time, error) {
	c, err := creds.Retrieve(ctx)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("ElastiCache IAM token for %s on %s (%s): %w", user, cacheName, region, err)
	}
	until := now.Add(TokenLifetime)
	if c.CanExpire && c.Expires.Before(until) {
		until = c.Expires
	}
	q := url.Values{}
	q.Set("Action", "connect")
	q.Set("User", user)
	if serverless {
		q.Set("ResourceType", "ServerlessCache")
	}
	q.Set("X-Amz-Expires", fmt.Sprint(int(TokenLifetime/time.Second)))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+cacheName+"/?"+q.Encode(), nil)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("ElastiCache IAM token: cache name %q: %w", cacheName, err)
	}
	signed, _, err := v4.NewSigner().PresignHTTP(ctx, c, req, emptySHA256, "elasticache", region, now.UTC())
	if err != nil {
		return "", time.Time{}, fmt.Errorf("ElastiCache IAM token for %s on %s (%s): %w", user, cacheName, region, err)
	}
	return strings.TrimPrefix(signed, "http://"), until, nil
}
