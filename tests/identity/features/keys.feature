Feature: Signing keys: rotation, floods of unknown keys, and an issuer that is down
  The proxy downloads the issuer's key set at start and again when a token names a key id it
  does not know, at most once per 10 seconds (identity.DefaultJWKSMinRefreshInterval) across
  all connections. Tokens with unknown key ids are refused in between, so a flood of forged
  tokens costs the issuer at most one request per 10 seconds.

  Background:
    Given the PostgreSQL service account "svc_proxy" with a SCRAM password

  Scenario: a rotated key is accepted once the rate-limit window has passed; the withdrawn key is not
    Given a local OIDC issuer
    And the proxy runs with token authentication
    And a Keycloak token for "alice@example.com"
    And pgx connects with the token
    And the login succeeds
    And the issuer's JWKS download count is noted
    When the issuer rotates its RS256 key and withdraws the old one
    And a Keycloak token for "alice@example.com"
    And pgx connects with the token
    Then the login is refused with SQLSTATE 28000 and a message containing "signed with a key the identity provider does not publish"
    And the auth failure counter for reason "unknown_key" is 1
    And within 30 seconds pgx connects with the token
    And the new key was first accepted at least 10 seconds after the proxy started
    And the issuer served at most one JWKS download per 10 seconds since it was noted, plus one
    When the session runs "SELECT current_setting('application_name')"
    Then the statement succeeds with "jwt:alice@example.com"
    Given the token minted with the withdrawn key
    When pgx connects with the token
    Then the login is refused with SQLSTATE 28000 and a message containing "signed with a key the identity provider does not publish"
    And no token appears in the proxy logs

  Scenario: a flood of tokens with unknown key ids costs the issuer at most one download per 10 seconds
    Given a local OIDC issuer
    And the proxy runs with token authentication
    And 11 seconds have passed since the proxy started
    And the issuer's JWKS download count is noted
    When 300 logins with tokens signed by unknown keys are attempted, 30 at a time
    Then every one of them is refused with SQLSTATE 28000 and a message containing "signed with a key the identity provider does not publish"
    And the issuer served at most one JWKS download per 10 seconds since it was noted, plus one
    And the auth failure counter for reason "unknown_key" is 300
    Given a Keycloak token for "alice@example.com"
    When pgx connects with the token
    Then the login succeeds
    And no token appears in the proxy logs

  Scenario: the issuer is down when the proxy starts, then comes up
    Given a local OIDC issuer that is down
    And the proxy runs with token authentication
    Then GET /health answers 200
    And GET /ready answers 503
    And the proxy log says "OIDC issuer unreachable at start-up"
    Given a Keycloak token for "alice@example.com"
    When pgx connects with the token
    Then the login is refused with SQLSTATE 28000 and a message containing "identity provider is unavailable"
    And the auth failure counter for reason "issuer_unavailable" is 1
    When the issuer comes up
    Then within 60 seconds GET /ready answers 200
    When pgx connects with the token
    Then the login succeeds
    And no token appears in the proxy logs
