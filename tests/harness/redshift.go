package harness

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// DBCredential is a temporary database login the Redshift API stand-in
// handed out.
type DBCredential struct {
	// Action is GetClusterCredentials or GetCredentials (serverless).
	Action         string
	User, Password string
	Expires        time.Time
	// Key is the access key that signed the request.
	Key     string
	Revoked bool
}

// AllowRedshiftCluster makes a provisioned cluster GetClusterCredentials
// knows.
func (a *AWSAccount) AllowRedshiftCluster(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.clusters[id] = true
}

// AllowRedshiftWorkgroup makes a serverless workgroup GetCredentials knows.
func (a *AWSAccount) AllowRedshiftWorkgroup(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.workgroups[name] = true
}

// SetDBCredentialLifetime sets how long the database credentials handed out
// from now on last (whatever DurationSeconds asks).
func (a *AWSAccount) SetDBCredentialLifetime(d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.dbLifetime = d
}

// RevokeDBCredentials makes every database credential handed out so far
// fail, as a dropped and re-created user does.
func (a *AWSAccount) RevokeDBCredentials() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range a.dbCreds {
		a.dbCreds[i].Revoked = true
	}
}

// DBCredentials returns the database credentials handed out so far.
func (a *AWSAccount) DBCredentials() []DBCredential {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]DBCredential(nil), a.dbCreds...)
}

// checkDBPassword accepts a login of user with a handed-out password that
// has not expired or been revoked, and returns the key that asked for it.
func (a *AWSAccount) checkDBPassword(user, password string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.dbCreds {
		if c.User != user || c.Password != password {
			continue
		}
		switch {
		case c.Revoked:
			return c.Key, errors.New("revoked")
		case !time.Now().Before(c.Expires):
			return c.Key, errors.New("expired")
		}
		return c.Key, nil
	}
	return "", errors.New("not a password the Redshift API handed out for this user")
}

// StartRedshiftAPI serves, for a, the Redshift query API's
// GetClusterCredentials (XML answers) and Redshift Serverless's JSON
// GetCredentials on a loopback HTTP port, and returns its URL: give it to
// the SDK as AWS_ENDPOINT_URL_REDSHIFT and
// AWS_ENDPOINT_URL_REDSHIFT_SERVERLESS. It stops in cleanup.
func StartRedshiftAPI(t testing.TB, a *AWSAccount) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(a.serveRedshift))
	t.Cleanup(srv.Close)
	return srv.URL
}

func (a *AWSAccount) serveRedshift(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Amz-Target") == "RedshiftServerless.GetCredentials" {
		a.serveServerless(w, r)
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("Action") != "GetClusterCredentials" {
		redshiftError(w, http.StatusBadRequest, "InvalidAction", "only GetClusterCredentials is served")
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	caller, err := a.signer(r, "redshift")
	if err != nil {
		redshiftError(w, http.StatusForbidden, "InvalidClientTokenId", err.Error())
		return
	}
	cluster, user := r.PostForm.Get("ClusterIdentifier"), r.PostForm.Get("DbUser")
	if !a.clusters[cluster] {
		redshiftError(w, http.StatusNotFound, "ClusterNotFound", "Cluster "+cluster+" not found.")
		return
	}
	if user == "" {
		redshiftError(w, http.StatusBadRequest, "InvalidParameterValue", "DbUser is required")
		return
	}
	if d, _ := strconv.Atoi(r.PostForm.Get("DurationSeconds")); d != 0 && (d < 900 || d > 3600) {
		redshiftError(w, http.StatusBadRequest, "InvalidParameterValue", "DurationSeconds must be 900 to 3600")
		return
	}
	c := a.issueDB("GetClusterCredentials", "IAM:"+user, caller)
	w.Header().Set("Content-Type", "text/xml")
	var pw strings.Builder
	_ = xml.EscapeText(&pw, []byte(c.Password))
	fmt.Fprintf(w, `<GetClusterCredentialsResponse xmlns="http://redshift.amazonaws.com/doc/2012-12-01/"><GetClusterCredentialsResult>`+
		`<DbUser>%s</DbUser><DbPassword>%s</DbPassword><Expiration>%s</Expiration></GetClusterCredentialsResult>`+
		`<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></GetClusterCredentialsResponse>`,
		c.User, pw.String(), c.Expires.Format(time.RFC3339), randomHex(8))
}

func (a *AWSAccount) serveServerless(w http.ResponseWriter, r *http.Request) {
	var in struct {
		WorkgroupName   string `json:"workgroupName"`
		DurationSeconds int    `json:"durationSeconds"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil {
		serverlessError(w, http.StatusBadRequest, "ValidationException", "body: "+err.Error())
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	caller, err := a.signer(r, "redshift-serverless")
	if err != nil {
		serverlessError(w, http.StatusForbidden, "AccessDeniedException", err.Error())
		return
	}
	if !a.workgroups[in.WorkgroupName] {
		serverlessError(w, http.StatusBadRequest, "ResourceNotFoundException", "workgroup "+in.WorkgroupName+" not found")
		return
	}
	// The database user is the caller's identity: IAMR:<role name> for an
	// assumed role, IAM:<user> for a user's key.
	user := "IAM:pgproxy"
	if k := a.keys[caller]; k.Role != "" {
		user = "IAMR:" + k.Role[strings.LastIndexByte(k.Role, '/')+1:]
	}
	c := a.issueDB("GetCredentials", user, caller)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(map[string]any{"dbUser": c.User, "dbPassword": c.Password,
		"expiration": c.Expires.Unix(), "nextRefreshTime": c.Expires.Add(-5 * time.Minute).Unix()})
}

// issueDB hands out a database credential; a.mu is held.
func (a *AWSAccount) issueDB(action, user, caller string) DBCredential {
	c := DBCredential{Action: action, User: user, Password: "pw" + randomHex(16), Key: caller,
		Expires: time.Now().Add(a.dbLifetime).UTC().Truncate(time.Second)}
	a.dbCreds = append(a.dbCreds, c)
	return c
}

func redshiftError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	var esc strings.Builder
	_ = xml.EscapeText(&esc, []byte(msg))
	fmt.Fprintf(w, `<ErrorResponse xmlns="http://redshift.amazonaws.com/doc/2012-12-01/"><Error><Type>Sender</Type><Code>%s</Code>`+
		`<Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`, code, esc.String(), randomHex(8))
}

func serverlessError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}
