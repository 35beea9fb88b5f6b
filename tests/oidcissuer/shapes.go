package oidcissuer

// KeycloakUser describes a Keycloak access token's subject.
type KeycloakUser struct {
	// Subject is "sub"; default a fixed UUID-like value.
	Subject string
	// Username is "preferred_username".
	Username string
	// Email is "email"; omitted when empty.
	Email string
	// ClientID is the requesting client: "azp", and also added to "aud".
	ClientID string
	// Audience lists further audiences. Keycloak puts "account" there by
	// default; the client is only an audience with an audience mapper.
	Audience []string
	// RealmRoles go to realm_access.roles.
	RealmRoles []string
	// ClientRoles go to resource_access.<client>.roles.
	ClientRoles map[string][]string
	// Groups go to "groups" (Keycloak's group membership mapper).
	Groups []string
}

// KeycloakClaims returns claims shaped like a Keycloak access token. The
// issuer fills in iss, iat, exp and jti.
func KeycloakClaims(u KeycloakUser) map[string]any {
	sub := u.Subject
	if sub == "" {
		sub = "f3b1c2d4-0000-4000-8000-00000000cafe"
	}
	aud := append([]string{}, u.Audience...)
	if u.ClientID != "" {
		aud = append(aud, u.ClientID)
	}
	c := map[string]any{
		"sub":                sub,
		"typ":                "Bearer",
		"azp":                u.ClientID,
		"scope":              "openid profile email",
		"preferred_username": u.Username,
		"email_verified":     u.Email != "",
	}
	switch len(aud) {
	case 0:
	case 1:
		c["aud"] = aud[0] // Keycloak writes a single audience as a string
	default:
		c["aud"] = aud
	}
	if u.Email != "" {
		c["email"] = u.Email
	}
	if u.RealmRoles != nil {
		c["realm_access"] = map[string]any{"roles": u.RealmRoles}
	}
	if len(u.ClientRoles) > 0 {
		ra := map[string]any{}
		for client, roles := range u.ClientRoles {
			ra[client] = map[string]any{"roles": roles}
		}
		c["resource_access"] = ra
	}
	if u.Groups != nil {
		c["groups"] = u.Groups
	}
	return c
}

// EntraUser describes a Microsoft Entra ID access token's subject.
type EntraUser struct {
	// TenantID is "tid"; v1 tokens carry it in the issuer too.
	TenantID string
	// UPN is "upn" (v1) or "preferred_username" (v2).
	UPN string
	// ObjectID is "oid"; it is also used as "sub" when Subject is empty.
	ObjectID string
	// Subject is "sub".
	Subject string
	// AppID is the calling application: "appid" (v1) or "azp" (v2).
	AppID string
	// Audience is "aud", e.g. "api://pgproxy" (v1) or the API's client id (v2).
	Audience string
	// Roles go to "roles" (app roles).
	Roles []string
	// Groups go to "groups" (object ids).
	Groups []string
	// V2 makes a v2.0 token; the default is a v1.0 token whose issuer is
	// https://sts.windows.net/<tenant>/, which is why deployments need
	// OIDC_ISSUER_OVERRIDE.
	V2 bool
}

// EntraIssuerV1 is the issuer of Entra ID v1.0 tokens for tenant.
func EntraIssuerV1(tenant string) string { return "https://sts.windows.net/" + tenant + "/" }

// EntraClaims returns claims shaped like an Entra ID access token. For v1
// tokens iss is set to EntraIssuerV1; for v2 the issuer fills it in.
func EntraClaims(u EntraUser) map[string]any {
	tid := u.TenantID
	if tid == "" {
		tid = "72f988bf-0000-4000-8000-000000000001"
	}
	oid := u.ObjectID
	if oid == "" {
		oid = "00000000-0000-4000-8000-0000000000a1"
	}
	sub := u.Subject
	if sub == "" {
		sub = oid
	}
	c := map[string]any{
		"aud": u.Audience,
		"tid": tid,
		"oid": oid,
		"sub": sub,
	}
	if u.V2 {
		c["ver"] = "2.0"
		c["azp"] = u.AppID
		if u.UPN != "" {
			c["preferred_username"] = u.UPN
		}
	} else {
		c["ver"] = "1.0"
		c["iss"] = EntraIssuerV1(tid)
		c["appid"] = u.AppID
		if u.UPN != "" {
			c["upn"] = u.UPN
			c["unique_name"] = u.UPN
		}
	}
	if u.Roles != nil {
		c["roles"] = u.Roles
	}
	if u.Groups != nil {
		c["groups"] = u.Groups
	}
	return c
}
