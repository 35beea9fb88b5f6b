package config

import (
	"fmt"
	"net/url"
	"strings"
)

// AWS is the AWS identity section: RDS / Aurora IAM logins for the proxy's
// own connections (PG_IAM_*), ElastiCache / Valkey IAM for the decision
// cache (VALKEY_IAM_*).
type AWS struct {
	// PGIAM is PG_IAM_AUTH: the proxy's own logins (the service account of
	// token sessions, the shunt node, the analysis and catalog connections,
	// the reporter when its URL has no password) use an RDS IAM token.
	PGIAM       bool
	PGIAMUser   string
	Region      string
	RoleARN     string
	ExternalID  string
	SessionName string

	// ValkeyIAM is VALKEY_IAM_AUTH: the decision cache logs in with an
	// ElastiCache IAM token.
	ValkeyIAM        bool
	ValkeyUser       string
	ValkeyCacheName  string
	ValkeyServerless bool
	ValkeyRegion     string
	ValkeyRoleARN    string
	ValkeyExternalID string

	// RedshiftCluster (provisioned) or RedshiftWorkgroup (serverless) is
	// where BACKEND_FLAVOR=redshift's IAM logins get temporary credentials.
	RedshiftCluster   string
	RedshiftWorkgroup string
}

// redshiftServerlessUser is the service account's name while Redshift
// Serverless has not named it: GetCredentials gives the AWS identity's own
// database user (IAMR:<role>), whatever the proxy asks for.
const redshiftServerlessUser = "IAM"

// iamSSLModes are the sslmodes an IAM login accepts: the token is a
// password that must only reach the server it was signed for, so the
// server's name is verified too (verify-ca would hand it to any holder of
// a certificate of the CA, any RDS instance with the RDS bundle).
var iamSSLModes = map[string]bool{"verify-full": true}

// sessionNameChars are the characters STS takes in a RoleSessionName.
const sessionNameChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+=,.@-"

// loadAWS parses the AWS section. With PG_IAM_AUTH it gives c.Backend
// PG_IAM_USERNAME and marks it for IAM, and the shunt node the same when
// its URL has no password (the guardrails section is parsed before).
func loadAWS(p *parser, c *Config) AWS {
	a := AWS{
		PGIAM:             p.bool("PG_IAM_AUTH"),
		PGIAMUser:         p.str("PG_IAM_USERNAME"),
		Region:            p.str("PG_AWS_REGION"),
		RoleARN:           p.str("PG_IAM_ROLE_ARN"),
		ExternalID:        p.str("PG_IAM_EXTERNAL_ID"),
		SessionName:       p.str("PG_IAM_SESSION_NAME"),
		ValkeyIAM:         p.bool("VALKEY_IAM_AUTH"),
		ValkeyUser:        p.str("VALKEY_IAM_USER"),
		ValkeyCacheName:   p.str("VALKEY_CACHE_NAME"),
		ValkeyServerless:  p.bool("VALKEY_SERVERLESS"),
		ValkeyRegion:      p.str("VALKEY_AWS_REGION"),
		ValkeyRoleARN:     p.str("VALKEY_IAM_ROLE_ARN"),
		ValkeyExternalID:  p.str("VALKEY_IAM_EXTERNAL_ID"),
		RedshiftCluster:   p.str("REDSHIFT_CLUSTER_ID"),
		RedshiftWorkgroup: p.str("REDSHIFT_WORKGROUP"),
	}
	if (a.RedshiftCluster != "" || a.RedshiftWorkgroup != "") && !(a.PGIAM && c.Flavor == FlavorRedshift) {
		p.fail("REDSHIFT_CLUSTER_ID", "and REDSHIFT_WORKGROUP need BACKEND_FLAVOR=redshift and PG_IAM_AUTH=true")
	}
	if a.ValkeyRegion == "" {
		a.ValkeyRegion = a.Region
	}
	for _, v := range []struct{ name, arn string }{{"PG_IAM_ROLE_ARN", a.RoleARN}, {"VALKEY_IAM_ROLE_ARN", a.ValkeyRoleARN}} {
		if v.arn != "" && !strings.HasPrefix(v.arn, "arn:") {
			p.fail(v.name, fmt.Sprintf("=%q is not a role ARN (arn:aws:iam::123456789012:role/name)", v.arn))
		}
	}
	if len(a.SessionName) < 2 || len(a.SessionName) > 64 || strings.Trim(a.SessionName, sessionNameChars) != "" {
		p.fail("PG_IAM_SESSION_NAME", fmt.Sprintf("=%q must be 2 to 64 of the characters STS takes (letters, digits, _+=,.@-)", a.SessionName))
	}
	for _, v := range []struct{ id, idName, arn string }{
		{a.ExternalID, "PG_IAM_EXTERNAL_ID", a.RoleARN}, {a.ValkeyExternalID, "VALKEY_IAM_EXTERNAL_ID", a.ValkeyRoleARN}} {
		if v.id != "" && v.arn == "" {
			p.fail(v.idName, "is set without a role to assume: it is passed to AssumeRole only (set the role ARN, or remove it)")
		}
	}
	if a.PGIAM && p.agent {
		p.fail("PG_IAM_AUTH", "=true is not available in transparent mode: the proxy would sign tokens for each connection's "+
			"original destination address, which RDS certificates do not name (sslmode=verify-full cannot hold); run explicit mode in front of RDS")
	} else if a.PGIAM {
		loadPGIAM(p, c, a)
	} else if a.RoleARN != "" {
		p.fail("PG_IAM_ROLE_ARN", "needs PG_IAM_AUTH=true")
	}
	if a.ValkeyIAM {
		loadValkeyIAM(p, c, a)
	}
	return a
}

func loadPGIAM(p *parser, c *Config, a AWS) {
	redshift := c.Flavor == FlavorRedshift
	if redshift {
		switch {
		case a.RedshiftCluster == "" && a.RedshiftWorkgroup == "":
			p.fail("REDSHIFT_CLUSTER_ID", "or REDSHIFT_WORKGROUP is required with BACKEND_FLAVOR=redshift and PG_IAM_AUTH=true")
		case a.RedshiftCluster != "" && a.RedshiftWorkgroup != "":
			p.fail("REDSHIFT_CLUSTER_ID", "and REDSHIFT_WORKGROUP are both set: name the provisioned cluster or the serverless workgroup")
		case a.RedshiftWorkgroup != "" && a.PGIAMUser == "":
			a.PGIAMUser = redshiftServerlessUser
		}
	}
	if a.PGIAMUser == "" {
		p.fail("PG_IAM_USERNAME", "is required with PG_IAM_AUTH=true (a database user granted rds_iam; on Redshift the database user)")
	}
	if a.Region == "" {
		p.fail("PG_AWS_REGION", "is required with PG_IAM_AUTH=true (the region of the RDS or Aurora instance, e.g. eu-west-1)")
	}
	b := &c.Backend
	if b.Host == "" {
		return // PG_BACKEND_URL itself failed
	}
	if b.Password != "" {
		p.fail("PG_IAM_AUTH", "=true with a password in PG_BACKEND_URL: the proxy logs in with IAM tokens; remove the password")
	}
	if b.User != "" && a.PGIAMUser != "" && b.User != a.PGIAMUser {
		p.fail("PG_IAM_USERNAME", fmt.Sprintf("=%q differs from PG_BACKEND_URL's user %q: name the IAM user once", a.PGIAMUser, b.User))
	}
	if !iamSSLModes[b.SSLMode] {
		p.fail("PG_IAM_AUTH", fmt.Sprintf("=true needs sslmode=verify-full in PG_BACKEND_URL, not %q: an IAM token is a password for the server it names, sent over TLS to that server only", b.SSLMode))
	}
	b.User, b.IAM = a.PGIAMUser, true
	ownIAM(p, "SHUNT_NODE_URL", "a shunt node", &c.Guardrails.Shunt, a.PGIAMUser, redshift)
	ownIAM(p, "REPORTER_DB_URL", "a reporter", &c.Guardrails.Reporter, a.PGIAMUser, redshift)
}

// ownIAM marks u, the URL of another of the proxy's own logins (named
// name, what it is: what), for IAM when it has no password, with user when
// it names none. Redshift's temporary credentials are the cluster's: there
// such a URL needs a password of its own.
func ownIAM(p *parser, name, what string, u *BackendURL, user string, redshift bool) {
	switch {
	case u.Host == "" || u.Password != "":
		return
	case redshift:
		p.fail(name, "needs a password with BACKEND_FLAVOR=redshift: IAM logins serve PG_BACKEND_URL's cluster only")
		return
	case !iamSSLModes[u.SSLMode]:
		p.fail(name, fmt.Sprintf("has sslmode=%q: with PG_IAM_AUTH=true %s without a password logs in with an IAM token and needs sslmode=verify-full", u.SSLMode, what))
	}
	if u.User == "" {
		u.User = user
	}
	u.IAM = true
}

func loadValkeyIAM(p *parser, c *Config, a AWS) {
	g := c.Guardrails
	if g.ValkeyURL == "" {
		p.fail("VALKEY_IAM_AUTH", "=true needs VALKEY_URL (rediss://host:6379)")
	} else if u, err := url.Parse(g.ValkeyURL); err == nil {
		if u.Scheme != "rediss" {
			p.fail("VALKEY_IAM_AUTH", "=true needs a rediss:// VALKEY_URL: ElastiCache takes IAM tokens over TLS only")
		}
		if _, ok := u.User.Password(); ok {
			p.fail("VALKEY_IAM_AUTH", "=true with a password in VALKEY_URL: the proxy logs in with IAM tokens; remove the password")
		}
	}
	if g.ValkeyTLSSkipVerify {
		p.fail("VALKEY_TLS_SKIP_VERIFY", "=true with VALKEY_IAM_AUTH=true: an ElastiCache token names the cache, not the host, so whoever answers could replay it; verify the server")
	}
	if a.ValkeyUser == "" {
		p.fail("VALKEY_IAM_USER", "is required with VALKEY_IAM_AUTH=true (the IAM-enabled ElastiCache user id)")
	}
	if a.ValkeyCacheName == "" {
		p.fail("VALKEY_CACHE_NAME", "is required with VALKEY_IAM_AUTH=true (the replication group or serverless cache name)")
	}
	if a.ValkeyRegion == "" {
		p.fail("VALKEY_AWS_REGION", "is required with VALKEY_IAM_AUTH=true (or set PG_AWS_REGION)")
	}
}
