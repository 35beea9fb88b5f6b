Feature: Signing keys: rotation, floods of unknown keys, and an issuer that is down
  The proxy downloads the issuer's key set at start and again when a token names a key id it
  does not know, at most once per 10 seconds (identity.DefaultJWKSMinRefreshInterval) across
  all connections. A login whose key id is unknown waits for the next download allowed, which
  it shares with every login waiting meanwhile, for as long as STARTUP_TIMEOUT lets it: a
  rotated key is accepted at its first use, and a flood of forged tokens costs the issuer at
  most one request per 10 seconds. Most scenarios run the proxy with STARTUP_TIMEOUT=15s, so
  that a login can wait out a whole interval.

  Background:
    Given the PostgreSQL service account "svc_proxy" with a SCRAM password

  Scenario: after a rotation the first login with the new key waits for the next download and succeeds; the withdrawn key is refused
    Given a local OIDC issuer
    And the proxy runs with token authentication and:
      | STARTUP_TIMEOUT | 15s |
    And a Keycloak token for "alice@example.com"
    And pgx connects with the token
    And the login succeeds
    And the issuer's JWKS download count is noted
    When the issuer rotates its RS256 key and withdraws the old one
    And a Keycloak token for "alice@example.com"
    And pgx connects with the token
    Then the login succeeds
    And the login was accepted at least 10 seconds after the proxy started
    And the issuer served at most one JWKS download per 10 seconds since it was noted, plus one
    When the session runs "SELECT current_setting('application_name')"
    Then the statement succeeds with "jwt:alice@example.com"
    Given the token minted with the withdrawn key
    When pgx connects with the token
    Then the login is refused with SQLSTATE 28000 and a message containing "signed with a key the identity provider does not publish"
    And the auth failure counter for reason "unknown_key" is 1
    And the issuer served at most one JWKS download per 10 seconds since it was noted, plus one
    And no token appears in the proxy logs

  Scenario: a token with a made-up key id does not hold up the next rotation
    Given a local OIDC issuer
    And the proxy runs with token authentication and:
      | STARTUP_TIMEOUT | 15s |
    And the issuer's JWKS download count is noted
    And a Keycloak token for "mallory@example.com" with:
      | signature | unknown key |
    When pgx connects with the token
    Then the login is refused with SQLSTATE 28000 and a message containing "signed with a key the identity provider does not publish"
    And the issuer served exactly 1 JWKS download since it was noted
    When the issuer rotates its RS256 key and withdraws the old one
    And a Keycloak token for "alice@example.com"
    And pgx connects with the token
    Then the login succeeds
    And the issuer served at most one JWKS download per 10 seconds since it was noted, plus one
    And the auth failure counter for reason "unknown_key" is 1
    And no token appears in the proxy logs

  Scenario: a flood of tokens with unknown key ids costs the issuer at most one download per 10 seconds; genuine logins go on
    Given a local OIDC issuer
    And the proxy runs with token authentication and:
      | STARTUP_TIMEOUT | 15s |
    And the issuer's JWKS download count is noted
    And a Keycloak token for "alice@example.com"
    When 300 logins with tokens signed by unknown keys start, 300 at a time
    And pgx connects with the token
    Then the login succeeds
    When the logins with unknown keys have ended
    Then every one of them is refused with SQLSTATE 28000 and a message containing "signed with a key the identity provider does not publish"
    And the issuer served at most one JWKS download per 10 seconds since it was noted, plus one
    And the auth failure counter for reason "unknown_key" is 300
    And no token appears in the proxy logs

  Scenario: a login that cannot wait for the next download within STARTUP_TIMEOUT is refused as unknown_key, in time
    Given a local OIDC issuer
    And the proxy runs with token authentication and:
      | STARTUP_TIMEOUT | 3s |
    And the issuer's JWKS download count is noted
    And a Keycloak token for "mallory@example.com" with:
      | signature | unknown key |
    When pgx connects with the token
    Then the login is refused with SQLSTATE 28000 and a message containing "signed with a key the identity provider does not publish"
    And the issuer served exactly 0 JWKS downloads since it was noted
    And the auth failure counter for reason "unknown_key" is 1

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
