Feature: Refused tokens
  Every refusal is SQLSTATE 28000 with a message that says what was wrong, never echoes the
  token, and counts in pgproxy_auth_failures_total{reason}. The proxy stays usable.

  Background:
    Given the PostgreSQL service account "svc_proxy" with a SCRAM password
    And a local OIDC issuer

  # A token signed by a key the issuer never listed waits for the next key download, at most
  # 10 s after the one at start-up; the short STARTUP_TIMEOUT refuses it at its deadline instead.
  Scenario Outline: a token that is <problem> is refused
    Given the proxy runs with token authentication and:
      | STARTUP_TIMEOUT | 3s |
    And a Keycloak token for "mallory@example.com" with:
      | <attribute> | <value> |
    When pgx connects with the token
    Then the login is refused with SQLSTATE 28000 and a message containing "<message>"
    And the auth failure counter for reason "<reason>" is 1
    And no token appears in the proxy logs
    And the proxy log says "token refused"

    Examples:
      | problem                                 | attribute  | value                     | reason                | message                                                       |
      | expired                                 | expires in | -10m                      | token_expired         | token expired at                                              |
      | expired beyond the 60 s leeway          | expires in | -2m                       | token_expired         | token expired at                                              |
      | for another audience                    | client     | grafana                   | wrong_audience        | does not include the configured audience                      |
      | signed by a key the issuer never listed | signature  | unknown key               | unknown_key           | signed with a key the identity provider does not publish      |
      | signed by another key under a known kid | signature  | wrong key                 | bad_signature         | token signature is invalid                                    |
      | unsigned (alg none)                     | signature  | none                      | unsupported_algorithm | token algorithm "none" is not accepted (accepted: RS256, ES256) |
      | HMAC-signed with the public key         | signature  | HS256 with the public key | unsupported_algorithm | token algorithm "HS256" is not accepted                       |

  Scenario: an expired token within the clock leeway is still accepted
    Given the proxy runs with token authentication
    And a Keycloak token for "alice@example.com" with:
      | expires in | -20s |
    When pgx connects with the token
    Then the login succeeds

  Scenario: a token without one of OIDC_ALLOWED_ROLES is refused; realm roles, client roles and groups count
    Given the proxy runs with token authentication and:
      | OIDC_ALLOWED_ROLES | db_reader,db_admin |
    And a Keycloak token for "mallory@example.com" with:
      | realm roles | offline_access |
    When pgx connects with the token
    Then the login is refused with SQLSTATE 28000 and a message containing "token does not carry any of the required roles (db_reader, db_admin)"
    And the auth failure counter for reason "missing_role" is 1
    Given a Keycloak token for "alice@example.com" with:
      | realm roles | offline_access,db_reader |
    When pgx connects with the token
    Then the login succeeds
    Given a Keycloak token for "bob@example.com" with:
      | client roles | db_admin |
    When pgx connects with the token
    Then the login succeeds
    Given a Keycloak token for "carol@example.com" with:
      | groups | /db_reader |
    When pgx connects with the token
    Then the login succeeds

  Scenario: a database outside OIDC_ALLOWED_DATABASES is refused, naming the database
    Given the databases "reports" and "payroll" exist
    And the proxy runs with token authentication and:
      | OIDC_ALLOWED_DATABASES | reports |
    And a Keycloak token for "alice@example.com"
    When pgx connects with the token to database "payroll"
    Then the login is refused with SQLSTATE 28000 and a message containing "database \"payroll\" is not allowed for token authentication"
    And the auth failure counter for reason "database_not_allowed" is 1
    When pgx connects with the token to database "reports"
    Then the login succeeds

  Scenario: a token up to 16 KiB is accepted; a larger one is refused and the proxy carries on
    Given the proxy runs with token authentication
    And a Keycloak token for "alice@example.com" with:
      | padded to | 16384 |
    When pgx connects with the token
    Then the login succeeds
    Given a Keycloak token for "mallory@example.com" with:
      | padded to | 16385 |
    When pgx connects with the token
    Then the login is refused with SQLSTATE 28000 and a message containing "token is too large"
    And the auth failure counter for reason "token_too_large" is 1
    Given a Keycloak token for "alice@example.com"
    When pgx connects with the token
    Then the login succeeds
    And no token appears in the proxy logs

  # tests/BUGS.md: "identity: a password message over 64 KiB gets a connection reset".
  Scenario: a token over 64 KiB gets the same clear refusal, and the proxy carries on
    Given the proxy runs with token authentication
    And a Keycloak token for "mallory@example.com" with:
      | padded to | 100000 |
    When pgx connects with the token
    And the proxy log is shown
    Then the login is refused with SQLSTATE 28000 and a message containing "token is too large"
    And the auth failure counter for reason "token_too_large" is 1
    Given a Keycloak token for "alice@example.com"
    When pgx connects with the token
    Then the login succeeds

  Scenario: a token over a plaintext connection is refused when TLS is enabled
    Given the proxy runs with token authentication
    And a Keycloak token for "alice@example.com"
    When pgx connects with the token without TLS
    Then the login is refused with SQLSTATE 28000 and a message containing "token authentication needs a TLS connection"
    And the auth failure counter for reason "plaintext_token" is 1
    And no token appears in the proxy logs

  Scenario: a password that is not a JWT is refused as malformed
    Given the proxy runs with token authentication
    When pgx connects with the password "hunter2-not-a-token"
    Then the login is refused with SQLSTATE 28000 and a message containing "password is not a JWT"
    And the auth failure counter for reason "malformed_token" is 1
