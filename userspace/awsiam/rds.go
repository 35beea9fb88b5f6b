package awsiam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"
)

// RDS makes RDS / Aurora IAM tokens for the proxy's own logins (it is a
// backend.Tokens).
type RDS struct {
	Creds  aws.CredentialsProvider
	Region string
	// Log gets a line per refused login (user, region, host; never the
	// token) and per failure to sign.
	Log *slog.Logger
	// OnRefused, when set, counts a refused login.
	OnRefused func()
}

// Token signs a login of user at endpoint (host:port).
func (r *RDS) Token(ctx context.Context, endpoint, user string) (string, string, error) {
	tok, err := RDSToken(ctx, r.Creds, endpoint, r.Region, user)
	if err != nil && r.Log != nil {
		r.Log.Error("RDS IAM: cannot sign a login", "iam_user", user, "region", r.Region, "host", endpoint, "error", err)
	}
	return user, tok, err
}

// Reason is the client's account of err (see the package function).
func (r *RDS) Reason(err error) string { return Reason(err) }

// Refused logs and counts a server's refusal of a token, and returns the
// client's hint.
func (r *RDS) Refused(endpoint, user string, err error) string {
	if r.Log != nil {
		r.Log.Error("RDS IAM: the server refused the proxy's login", "iam_user", user, "region", r.Region, "host", endpoint, "error", err)
	}
	if r.OnRefused != nil {
		r.OnRefused()
	}
	return fmt.Sprintf("the proxy's RDS IAM login as %q was refused: check that its AWS identity may rds-db:connect to this user "+
		"(arn:aws:rds-db:%s:<account>:dbuser:<DbiResourceId>/%s), that PG_AWS_REGION=%s is the instance's region, "+
		"and that the user is granted rds_iam", user, r.Region, user, r.Region)
}

// Reason is a short account of why credentials or a token could not be
// had, fit for a client: the AWS service, operation and error code
// ("STS AssumeRole: AccessDenied"), without the message, ARNs or account
// ids the full error (which goes to the log) may hold.
func Reason(err error) string {
	var op *smithy.OperationError
	var api smithy.APIError
	switch {
	case errors.As(err, &op) && errors.As(err, &api):
		return fmt.Sprintf("%s %s: %s", op.ServiceID, op.OperationName, api.ErrorCode())
	case errors.As(err, &op):
		return fmt.Sprintf("%s %s: the request failed", op.ServiceID, op.OperationName)
	case errors.Is(err, context.DeadlineExceeded):
		return "AWS credentials: timed out"
	default:
		return "no AWS credentials (the default chain found none that work)"
	}
}
