package identity

import (
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Identity is the person behind an accepted token.
type Identity struct {
	// Name is the value of the first present identity claim (by default
	// email, upn, preferred_username, sub); it goes into application_name
	// through ApplicationName and onto the session's log lines.
	Name string
	// NameClaim is the claim Name came from.
	NameClaim string
	// Subject is "sub" (may be empty for issuers that omit it).
	Subject string
	// Issuer is "iss".
	Issuer string
	// Audience is "aud".
	Audience []string
	// Roles are all roles and groups found in the token, deduplicated.
	Roles []string
	// Database is the database that was checked ("" when none was asked).
	Database string
	// Expiry is "exp".
	Expiry time.Time
	// Claims are all claims of the token, as decoded JSON.
	Claims map[string]any
}

// checkClaims applies issuer, time, audience, identity, role and database
// rules to verified claims.
func (v *Validator) checkClaims(st *issuerState, claims map[string]any, database string) (Identity, error) {
	iss, _ := claims["iss"].(string)
	if iss != st.issuer {
		return Identity{}, refuse(ReasonWrongIssuer, nil,
			"token issuer %s is not the configured issuer", quoteClaim(iss))
	}

	now := v.cfg.Now()
	leeway := v.cfg.ClockLeeway
	exp, ok, err := numericDate(claims, "exp")
	switch {
	case err != nil:
		return Identity{}, err
	case !ok:
		return Identity{}, refuse(ReasonMalformedToken, nil, "token has no expiry (exp)")
	case now.After(exp.Add(leeway)):
		return Identity{}, refuse(ReasonTokenExpired, nil,
			"token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	for _, name := range []string{"nbf", "iat"} {
		t, ok, err := numericDate(claims, name)
		if err != nil {
			return Identity{}, err
		}
		if ok && now.Add(leeway).Before(t) {
			return Identity{}, refuse(ReasonTokenNotYetValid, nil,
				"token is not valid before %s (%s)", t.UTC().Format(time.RFC3339), name)
		}
	}

	aud := stringList(claims["aud"])
	if !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(v.cfg.Audiences, a) }) {
		got := "none"
		if len(aud) > 0 {
			got = quoteClaim(strings.Join(aud, ","))
		}
		return Identity{}, refuse(ReasonWrongAudience, nil,
			"token audience %s does not include the configured audience", got)
	}

	id := Identity{
		Issuer:   iss,
		Audience: aud,
		Expiry:   exp,
		Claims:   claims,
		Database: database,
	}
	id.Subject, _ = claims["sub"].(string)
	for _, name := range v.cfg.IdentityClaims {
		if s, ok := lookupPath(claims, name).(string); ok && strings.TrimSpace(s) != "" {
			id.Name, id.NameClaim = s, name
			break
		}
	}
	if id.Name == "" {
		return Identity{}, refuse(ReasonMissingIdentity, nil,
			"token has none of the identity claims %s", strings.Join(v.cfg.IdentityClaims, ", "))
	}

	id.Roles = v.roles(claims)
	if len(v.cfg.AllowedRoles) > 0 &&
		!slices.ContainsFunc(id.Roles, func(r string) bool { return slices.Contains(v.cfg.AllowedRoles, r) }) {
		return Identity{}, refuse(ReasonMissingRole, nil,
			"token does not carry any of the required roles (%s)", strings.Join(v.cfg.AllowedRoles, ", "))
	}

	if !v.DatabaseAllowed(database) {
		return Identity{}, refuse(ReasonDatabaseNotAllowed, nil,
			"database %s is not allowed for token authentication", quoteClaim(database))
	}
	return id, nil
}

// DatabaseAllowed reports whether token users may open database. An empty
// name, or an empty OIDC_ALLOWED_DATABASES, allows it.
func (v *Validator) DatabaseAllowed(database string) bool {
	return database == "" || len(v.cfg.AllowedDatabases) == 0 || slices.Contains(v.cfg.AllowedDatabases, database)
}

// roles gathers roles from Keycloak's realm_access.roles and
// resource_access.<audience>.roles for each configured audience, the
// top-level roles (Entra app roles) and groups claims, and the configured
// OIDC_ROLES_CLAIM path. A group written as a path ("/admins", Keycloak's
// full-path mapper) also counts under its name without the leading slash.
func (v *Validator) roles(claims map[string]any) []string {
	var out []string
	add := func(vals []string) {
		for _, r := range vals {
			if r != "" && !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	add(stringList(lookupPath(claims, "realm_access.roles")))
	if ra, ok := claims["resource_access"].(map[string]any); ok {
		for _, client := range v.cfg.Audiences {
			if c, ok := ra[client].(map[string]any); ok {
				add(stringList(c["roles"]))
			}
		}
	}
	add(stringList(claims["roles"]))
	groups := stringList(claims["groups"])
	add(groups)
	for _, g := range groups {
		if strings.HasPrefix(g, "/") {
			add([]string{strings.TrimPrefix(g, "/")})
		}
	}
	if v.cfg.RolesClaim != "" {
		add(stringList(lookupPath(claims, v.cfg.RolesClaim)))
	}
	return out
}

// lookupPath follows a dot-separated path through nested objects. A claim
// whose own name contains dots is found too, by trying the whole remaining
// path as one key first.
func lookupPath(claims map[string]any, path string) any {
	if v, ok := claims[path]; ok {
		return v
	}
	head, rest, found := strings.Cut(path, ".")
	if !found {
		return nil
	}
	next, ok := claims[head].(map[string]any)
	if !ok {
		return nil
	}
	return lookupPath(next, rest)
}

// stringList reads a claim that is an array of strings or a single string.
// Non-string elements are ignored.
func stringList(v any) []string {
	switch x := v.(type) {
	case string:
		if x == "" {
			return nil
		}
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case []string:
		return x
	}
	return nil
}

// numericDate reads a NumericDate claim (seconds since the epoch, possibly
// fractional). ok is false when the claim is absent.
func numericDate(claims map[string]any, name string) (t time.Time, ok bool, err error) {
	raw, present := claims[name]
	if !present || raw == nil {
		return time.Time{}, false, nil
	}
	f, isNum := raw.(float64)
	if !isNum {
		return time.Time{}, false, refuse(ReasonMalformedToken, nil, "token claim %s is not a number", name)
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true, nil
}

// LogValue renders an identity for slog without its claims, so
// logger.With("identity", id) puts the person on every session line.
func (id Identity) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", id.Name),
		slog.String("claim", id.NameClaim),
		slog.String("sub", id.Subject),
		slog.Any("roles", id.Roles),
	)
}
