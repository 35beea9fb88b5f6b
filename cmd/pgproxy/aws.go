package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/pgproxy/pgproxy/userspace/awsiam"
	"github.com/pgproxy/pgproxy/userspace/backend"
	"github.com/pgproxy/pgproxy/userspace/cache"
	"github.com/pgproxy/pgproxy/userspace/config"
	"github.com/pgproxy/pgproxy/userspace/telemetry"
)

// iamTokens is the source of the proxy's own IAM logins' credentials (RDS
// / Aurora tokens, or Redshift temporary credentials with
// BACKEND_FLAVOR=redshift), nil without PG_IAM_AUTH; m may be nil (the
// one-shot commands). Credentials are fetched at the first login, not
// here: start-up does not wait for AWS.
func iamTokens(ctx context.Context, cfg *config.Config, log *slog.Logger, m *telemetry.Metrics) (backend.Tokens, error) {
	a := cfg.AWS
	if !a.PGIAM {
		return nil, nil
	}
	id := awsiam.Identity{Region: a.Region, RoleARN: a.RoleARN, ExternalID: a.ExternalID, SessionName: a.SessionName}
	if cfg.Flavor == config.FlavorRedshift {
		r, err := awsiam.NewRedshift(ctx, id, a.RedshiftCluster, a.RedshiftWorkgroup)
		if err != nil {
			return nil, fmt.Errorf("PG_IAM_AUTH: %w", err)
		}
		r.Log = log
		if m != nil {
			r.OnRefused = func() { m.BackendAuthFailure("iam") }
		}
		return r, nil
	}
	creds, err := awsiam.NewCredentials(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("PG_IAM_AUTH: %w", err)
	}
	r := &awsiam.RDS{Creds: creds, Region: a.Region, Log: log}
	if m != nil {
		r.OnRefused = func() { m.BackendAuthFailure("iam") }
	}
	return r, nil
}

// noteIAM tells at start-up which logins IAM serves.
func noteIAM(cfg *config.Config, log *slog.Logger) {
	a := cfg.AWS
	if a.PGIAM && cfg.Flavor == config.FlavorRedshift {
		log.Info("Redshift IAM: the proxy's own logins use temporary credentials", "db_user", a.PGIAMUser,
			"cluster", a.RedshiftCluster, "workgroup", a.RedshiftWorkgroup, "region", a.Region, "role_arn", a.RoleARN)
	} else if a.PGIAM {
		log.Info("RDS IAM: the proxy's own logins use IAM tokens", "iam_user", a.PGIAMUser, "region", a.Region,
			"role_arn", a.RoleARN, "shunt", cfg.Guardrails.Shunt.IAM, "reporter", cfg.Guardrails.Reporter.IAM)
	}
	if a.PGIAM && !cfg.OIDC.Enabled {
		log.Info("IAM with passthrough authentication: clients' own user names and passwords still go to " +
			"PG_BACKEND_URL's server; IAM serves only the proxy's own connections (analysis, catalogs, shunt node, reporter)")
	}
	if a.ValkeyIAM && cfg.Guardrails.Enabled {
		log.Info("ElastiCache IAM: the decision cache logs in with IAM tokens", "iam_user", a.ValkeyUser,
			"cache", a.ValkeyCacheName, "serverless", a.ValkeyServerless, "region", a.ValkeyRegion, "role_arn", a.ValkeyRoleARN)
	}
}

// valkeyConnLifetime remakes IAM connections before ElastiCache ends them
// (after 12 hours).
const valkeyConnLifetime = 11 * time.Hour

// valkeyIAM sets the decision cache's ElastiCache IAM login on o: a token
// for each new connection, and AUTH again on live ones before their token
// (or the credentials that signed it) expires.
func valkeyIAM(ctx context.Context, cfg *config.Config, o *cache.Options) error {
	a := cfg.AWS
	if !a.ValkeyIAM {
		return nil
	}
	creds, err := awsiam.NewCredentials(ctx, awsiam.Identity{Region: a.ValkeyRegion, RoleARN: a.ValkeyRoleARN,
		ExternalID: a.ValkeyExternalID, SessionName: a.SessionName})
	if err != nil {
		return fmt.Errorf("VALKEY_IAM_AUTH: %w", err)
	}
	o.Credentials = func(ctx context.Context) (cache.Credentials, error) {
		now := time.Now()
		tok, until, err := awsiam.ElastiCacheToken(ctx, creds, a.ValkeyCacheName, a.ValkeyRegion, a.ValkeyUser, a.ValkeyServerless, now)
		if err != nil {
			return cache.Credentials{}, err
		}
		// Two thirds into the token's life: 10 minutes for a full one; not
		// sooner than a second (credentials at their very end).
		return cache.Credentials{Username: a.ValkeyUser, Password: tok, RefreshAfter: now.Add(max(time.Second, until.Sub(now)*2/3))}, nil
	}
	o.ConnLifetime = valkeyConnLifetime
	return nil
}
