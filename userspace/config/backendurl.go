package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// BackendURL is the parsed PG_BACKEND_URL.
type BackendURL struct {
	Host     string // host name or address, no brackets
	Port     string
	Database string // default database when the client names none
	User     string // service account (used by JWT auth); may be empty
	Password string
	SSLMode  string // disable, allow, prefer, require, verify-ca, verify-full
	Params   map[string]string
	// IAM: the password is an RDS IAM token made for each login
	// (PG_IAM_AUTH); Password is empty.
	IAM bool
}

// Addr returns host:port.
func (b BackendURL) Addr() string { return net.JoinHostPort(b.Host, b.Port) }

// String returns the URL without its password, safe for logs.
func (b BackendURL) String() string {
	u := url.URL{Scheme: "postgres", Host: b.Addr(), Path: "/" + b.Database}
	if b.User != "" {
		u.User = url.User(b.User)
	}
	return u.String() + "?sslmode=" + b.SSLMode
}

var sslModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// ParseBackendURL parses a postgres:// or postgresql:// URL.
func ParseBackendURL(raw string) (BackendURL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return BackendURL{}, errors.New("is not a valid URL")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return BackendURL{}, fmt.Errorf("must start with postgres:// (got scheme %q)", u.Scheme)
	}
	b := BackendURL{Host: u.Hostname(), Port: u.Port(), Database: strings.TrimPrefix(u.Path, "/"), SSLMode: "prefer", Params: map[string]string{}}
	if b.Host == "" {
		return BackendURL{}, errors.New("has no host")
	}
	if strings.Contains(b.Host, ",") {
		return BackendURL{}, fmt.Errorf("has several hosts (%s); pgproxy dials one", b.Host)
	}
	if b.Port == "" {
		b.Port = "5432"
	}
	if n, err := strconv.Atoi(b.Port); err != nil || n < 1 || n > 65535 {
		return BackendURL{}, fmt.Errorf("has port %q; a port is 1 to 65535", b.Port)
	}
	if u.User != nil {
		b.User = u.User.Username()
		b.Password, _ = u.User.Password()
	}
	for k, vs := range u.Query() {
		if len(vs) == 0 {
			continue
		}
		if len(vs) > 1 {
			// libpq and pgx take the last, this parser the first: no guess.
			return BackendURL{}, fmt.Errorf("gives %s %d times; give it once", k, len(vs))
		}
		switch k {
		case "sslmode":
			b.SSLMode = vs[0]
		default:
			b.Params[k] = vs[0]
		}
	}
	ok := false
	for _, m := range sslModes {
		ok = ok || b.SSLMode == m
	}
	if !ok {
		return BackendURL{}, fmt.Errorf("has sslmode=%q; accepted: %s", b.SSLMode, strings.Join(sslModes, ", "))
	}
	return b, nil
}
