package cache

import (
	"context"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"
)

// TestCredentialsReachValkeyGo checks that rotating credentials, their
// refresh time and the connection lifetime (ElastiCache IAM) are handed to
// valkey-go.
func TestCredentialsReachValkeyGo(t *testing.T) {
	at := time.Now().Add(10 * time.Minute)
	opt, err := clientOption(Options{ValkeyURL: "rediss://cache.example:6379", ConnectTimeout: time.Second, ConnLifetime: 11 * time.Hour,
		Credentials: func(ctx context.Context) (Credentials, error) {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("the credentials are asked without a deadline")
			}
			return Credentials{Username: "pgproxy-cache", Password: "token", RefreshAfter: at}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if opt.ConnLifetime != 11*time.Hour || opt.AuthCredentialsFn == nil {
		t.Fatalf("lifetime %v, credentials fn set %v", opt.ConnLifetime, opt.AuthCredentialsFn != nil)
	}
	c, err := opt.AuthCredentialsFn(valkey.AuthCredentialsContext{})
	if err != nil || c.Username != "pgproxy-cache" || c.Password != "token" || !c.RefreshAfter.Equal(at) {
		t.Errorf("credentials %+v, %v", c, err)
	}
}
