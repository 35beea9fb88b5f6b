package awsiam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/aws/aws-sdk-go-v2/service/redshiftserverless"
	"golang.org/x/sync/singleflight"
)

// RedshiftDuration is how long the temporary database credentials the
// proxy asks Redshift for last (the most Redshift gives).
const RedshiftDuration = time.Hour

// Redshift makes the credentials of the proxy's own logins to Amazon
// Redshift (it is a backend.Tokens): temporary database credentials from
// GetClusterCredentials (a provisioned cluster, for the database user
// given) or Redshift Serverless GetCredentials (a workgroup, for the
// database user of the AWS identity), cached until shortly before they
// expire and shared by every login.
type Redshift struct {
	// ClusterID names a provisioned cluster; Workgroup a serverless
	// workgroup (one of them).
	ClusterID, Workgroup, Region string
	Log                          *slog.Logger
	// OnRefused, when set, counts a refused login.
	OnRefused func()

	provisioned *redshift.Client
	serverless  *redshiftserverless.Client
	now         func() time.Time
	group       singleflight.Group

	mu     sync.Mutex
	cached map[string]redshiftLogin // by the user asked for
}

type redshiftLogin struct {
	user, password string
	refreshAt      time.Time
}

// NewRedshift makes the Redshift credential source of id's AWS identity
// for the cluster clusterID or the serverless workgroup workgroup.
func NewRedshift(ctx context.Context, id Identity, clusterID, workgroup string) (*Redshift, error) {
	if (clusterID == "") == (workgroup == "") {
		return nil, errors.New("awsiam: name one of a Redshift cluster or a serverless workgroup")
	}
	cfg, err := Config(ctx, id)
	if err != nil {
		return nil, err
	}
	r := &Redshift{ClusterID: clusterID, Workgroup: workgroup, Region: id.Region, now: time.Now, cached: map[string]redshiftLogin{}}
	if clusterID != "" {
		r.provisioned = redshift.NewFromConfig(cfg)
	} else {
		r.serverless = redshiftserverless.NewFromConfig(cfg)
	}
	return r, nil
}

// target names the cluster or workgroup for logs and hints.
func (r *Redshift) target() string {
	if r.ClusterID != "" {
		return "cluster " + r.ClusterID
	}
	return "serverless workgroup " + r.Workgroup
}

// Token returns the temporary user name and password of a login of user
// (ignored for a serverless workgroup, where the AWS identity decides).
func (r *Redshift) Token(ctx context.Context, endpoint, user string) (string, string, error) {
	r.mu.Lock()
	c, ok := r.cached[user]
	r.mu.Unlock()
	if ok && r.now().Before(c.refreshAt) {
		return c.user, c.password, nil
	}
	ch := r.group.DoChan(user, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		fetched := r.now()
		l, err := r.fetch(fctx, user)
		if err != nil {
			return nil, err
		}
		l.refreshAt = refreshTime(fetched, aws.Credentials{CanExpire: true, Expires: l.refreshAt})
		r.mu.Lock()
		r.cached[user] = l
		r.mu.Unlock()
		return l, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			if r.Log != nil {
				r.Log.Error("Redshift IAM: cannot get temporary credentials", "iam_user", user, "target", r.target(),
					"region", r.Region, "host", endpoint, "error", res.Err)
			}
			return "", "", fmt.Errorf("Redshift temporary credentials for %s: %w", r.target(), res.Err)
		}
		l := res.Val.(redshiftLogin)
		return l.user, l.password, nil
	case <-ctx.Done():
		return "", "", ctx.Err()
	}
}

// fetch asks Redshift; refreshAt holds the expiry.
func (r *Redshift) fetch(ctx context.Context, user string) (redshiftLogin, error) {
	secs := aws.Int32(int32(RedshiftDuration / time.Second))
	if r.provisioned != nil {
		out, err := r.provisioned.GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
			ClusterIdentifier: aws.String(r.ClusterID), DbUser: aws.String(user), DurationSeconds: secs})
		if err != nil {
			return redshiftLogin{}, err
		}
		return redshiftLogin{user: aws.ToString(out.DbUser), password: aws.ToString(out.DbPassword), refreshAt: aws.ToTime(out.Expiration)}, nil
	}
	out, err := r.serverless.GetCredentials(ctx, &redshiftserverless.GetCredentialsInput{
		WorkgroupName: aws.String(r.Workgroup), DurationSeconds: secs})
	if err != nil {
		return redshiftLogin{}, err
	}
	return redshiftLogin{user: aws.ToString(out.DbUser), password: aws.ToString(out.DbPassword), refreshAt: aws.ToTime(out.Expiration)}, nil
}

// Reason is the client's account of err (see the package function).
func (r *Redshift) Reason(err error) string { return Reason(err) }

// Refused logs and counts a server's refusal of temporary credentials,
// drops them (the next login asks Redshift again), and returns the
// client's hint.
func (r *Redshift) Refused(endpoint, user string, err error) string {
	r.mu.Lock()
	for k, c := range r.cached {
		if c.user == user {
			delete(r.cached, k)
		}
	}
	r.mu.Unlock()
	if r.Log != nil {
		r.Log.Error("Redshift IAM: the server refused the proxy's login", "db_user", user, "target", r.target(),
			"region", r.Region, "host", endpoint, "error", err)
	}
	if r.OnRefused != nil {
		r.OnRefused()
	}
	if r.ClusterID != "" {
		return fmt.Sprintf("the proxy's Redshift login as %q with temporary credentials was refused: check that its AWS identity may "+
			"redshift:GetClusterCredentials on arn:aws:redshift:%s:<account>:dbuser:%s/<user> and that the user exists", user, r.Region, r.ClusterID)
	}
	return fmt.Sprintf("the proxy's Redshift Serverless login as %q was refused: check that its AWS identity may "+
		"redshift-serverless:GetCredentials on workgroup %s in %s", user, r.Workgroup, r.Region)
}
