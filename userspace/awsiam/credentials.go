// Package awsiam gives the proxy's own logins AWS identity: credentials
// from the default AWS chain (environment, shared config and profiles, web
// identity / IRSA, EKS Pod Identity, ECS, instance metadata), optionally a
// role assumed through STS for another account, and the SigV4-presigned
// tokens RDS / Aurora (rds-db:connect) and ElastiCache (elasticache:Connect)
// take as passwords.
//
// Tokens and credentials are secrets: nothing here logs them, and the
// errors returned never contain them.
package awsiam

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"golang.org/x/sync/singleflight"
)

// Identity says where credentials come from.
type Identity struct {
	// Region signs the tokens and picks the STS endpoint.
	Region string
	// RoleARN, when set, is assumed through STS with the chain's
	// credentials (cross-account access); the assumed role's temporary
	// credentials sign the tokens.
	RoleARN string
	// ExternalID is passed to AssumeRole when set.
	ExternalID string
	// SessionName is AssumeRole's RoleSessionName (CloudTrail shows it).
	SessionName string
	// RoleDuration is the assumed role's session length (default 1 h).
	RoleDuration time.Duration
}

// DefaultRoleDuration is how long an assumed role's credentials last.
const DefaultRoleDuration = time.Hour

// maxRefreshAhead bounds how long before expiry credentials are fetched
// again; short-lived ones are fetched again after four fifths of their life.
const maxRefreshAhead = 5 * time.Minute

// NewCredentials returns the credentials id asks for: the default AWS
// chain's, or, with a RoleARN, the role's assumed through STS. They are
// cached and fetched again before they expire; concurrent callers share one
// fetch. Nothing is fetched before the first Retrieve.
func NewCredentials(ctx context.Context, id Identity) (aws.CredentialsProvider, error) {
	cfg, err := Config(ctx, id)
	if err != nil {
		return nil, err
	}
	return cfg.Credentials, nil
}

// Config is the AWS configuration of id (region, endpoints, retries) whose
// Credentials are NewCredentials', for the SDK's service clients.
func Config(ctx context.Context, id Identity) (aws.Config, error) {
	if id.Region == "" {
		return aws.Config{}, errors.New("awsiam: no region")
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(id.Region))
	if err != nil {
		return aws.Config{}, fmt.Errorf("awsiam: AWS configuration: %w", err)
	}
	var p aws.CredentialsProvider = cfg.Credentials
	if p == nil {
		return aws.Config{}, errors.New("awsiam: the AWS configuration has no credentials provider")
	}
	if id.RoleARN != "" {
		client := sts.NewFromConfig(cfg)
		dur := id.RoleDuration
		if dur <= 0 {
			dur = DefaultRoleDuration
		}
		p = stscreds.NewAssumeRoleProvider(client, id.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = id.SessionName
			o.Duration = dur
			if id.ExternalID != "" {
				o.ExternalID = aws.String(id.ExternalID)
			}
		})
	}
	cfg.Credentials = NewCache(p)
	return cfg, nil
}

// Cache keeps the credentials of a provider until shortly before they
// expire: maxRefreshAhead before, or after four fifths of their life when
// that is later (short-lived credentials). Concurrent Retrieves share one
// fetch. A provider that caches itself (the default chain is wrapped in
// the SDK's cache, which refreshes only at expiry) is told to drop its
// credentials first, so that the early fetch gets new ones. A failed
// fetch while the cached credentials are still good keeps them and tries
// again a little later; only without good credentials is the error
// returned, and the next Retrieve tries again.
type Cache struct {
	p     aws.CredentialsProvider
	now   func() time.Time
	group singleflight.Group

	mu        sync.Mutex
	creds     aws.Credentials
	refreshAt time.Time // zero: nothing cached
	lastErr   error     // of the last fetch, while older credentials are served
}

// NewCache wraps p in a Cache.
func NewCache(p aws.CredentialsProvider) *Cache { return &Cache{p: p, now: time.Now} }

// goodMargin is how long before their expiry cached credentials stop being
// served when a fetch fails.
const goodMargin = 10 * time.Second

// Retrieve returns cached credentials, or fetches them.
func (c *Cache) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c.mu.Lock()
	creds, at := c.creds, c.refreshAt
	c.mu.Unlock()
	if !at.IsZero() && c.now().Before(at) {
		return creds, nil
	}
	ch := c.group.DoChan("", func() (any, error) {
		// The fetch outlives a caller that gives up; it has its own bound.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		c.mu.Lock()
		old, had := c.creds, !c.refreshAt.IsZero()
		c.mu.Unlock()
		if inv, ok := c.p.(interface{ Invalidate() }); ok && had {
			inv.Invalidate()
		}
		fetched := c.now()
		got, err := c.p.Retrieve(fctx)
		c.mu.Lock()
		defer c.mu.Unlock()
		if err != nil {
			if had && stillGood(old, c.now()) {
				c.lastErr = err
				c.refreshAt = c.now().Add(retryAfter(old, c.now()))
				return old, nil
			}
			c.refreshAt = time.Time{}
			return aws.Credentials{}, err
		}
		c.creds, c.refreshAt, c.lastErr = got, refreshTime(fetched, got), nil
		return got, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return aws.Credentials{}, r.Err
		}
		return r.Val.(aws.Credentials), nil
	case <-ctx.Done():
		return aws.Credentials{}, ctx.Err()
	}
}

// LastError is the error of the last fetch while older credentials are
// still served (nil when the last fetch worked).
func (c *Cache) LastError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// stillGood reports whether creds may still be handed out at now.
func stillGood(creds aws.Credentials, now time.Time) bool {
	return !creds.CanExpire || now.Before(creds.Expires.Add(-goodMargin))
}

// retryAfter spaces fetches after a failure while creds are still good: a
// quarter of their remaining life, from 1 to 30 seconds.
func retryAfter(creds aws.Credentials, now time.Time) time.Duration {
	if !creds.CanExpire {
		return 30 * time.Second
	}
	return min(30*time.Second, max(time.Second, creds.Expires.Sub(now)/4))
}

// refreshTime is when credentials fetched at fetched are fetched again.
// Credentials that never expire (static keys) are kept for an hour, so that
// a rotated profile or environment is read again.
func refreshTime(fetched time.Time, c aws.Credentials) time.Time {
	if !c.CanExpire {
		return fetched.Add(time.Hour)
	}
	life := c.Expires.Sub(fetched)
	ahead := min(maxRefreshAhead, life/5)
	return c.Expires.Add(-ahead)
}
