// Package identity validates JWTs presented as passwords (OIDC_AUTH=true)
// and maps them to an Identity. It has no wire code: the session asks the
// client for a cleartext password, calls Validator.Validate with it and the
// requested database, and on success connects to the backend as the service
// account of PG_BACKEND_URL with application_name = ApplicationName(id.Name).
// On failure it sends SQLSTATE 28000 with (*Error).Message and counts
// pgproxy_auth_failures_total{reason=(*Error).Reason}.
//
// # What is checked, in order
//
//   - size: at most MaxTokenBytes (16 KiB);
//   - form: a compact JWS whose header alg is an asymmetric algorithm the
//     issuer advertises (RS*, PS*, ES*, EdDSA); "none" and HS* are refused
//     even when advertised;
//   - signature: against the issuer's JWKS (found through discovery) via
//     go-oidc's verifier with a rate-limited key set: the JWKS is
//     downloaded at most once per JWKSMinRefreshInterval (10 s) across all
//     connections; a token whose kid is not cached waits, within its
//     context, for the next allowed download (one download for all tokens
//     waiting meanwhile) and is refused as unknown_key when that download
//     does not bring the key or the context ends first;
//   - iss: equal to OIDC_ISSUER_OVERRIDE if set, else the discovered issuer;
//   - exp (required), nbf and iat, with OIDC_CLOCK_LEEWAY (default 60 s);
//   - aud: contains one of OIDC_AUDIENCE;
//   - identity: the first non-empty claim of OIDC_IDENTITY_CLAIMS;
//   - roles: when OIDC_ALLOWED_ROLES is set, one of them appears in
//     realm_access.roles, resource_access.<audience>.roles, roles, groups or
//     OIDC_ROLES_CLAIM;
//   - database: when OIDC_ALLOWED_DATABASES is set and a database was asked
//     for, it is in the list.
//
// # Availability
//
// NewValidator does not fail when the issuer is unreachable: it retries
// discovery in the background (1 s doubling to 30 s), Ready reports false
// and Validate refuses with issuer_unavailable until keys are loaded. Once
// loaded, keys are re-read every JWKSRefreshInterval (15 min); a failed
// refresh keeps the cached keys.
//
// Tokens are bearer secrets: nothing in this package logs or echoes them.
package identity
