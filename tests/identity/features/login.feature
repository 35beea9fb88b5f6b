Feature: Token login onto the service account
  People sign in with an access token from their identity provider instead of a database
  password. The database only ever sees the service account of PG_BACKEND_URL; the person is
  in application_name (jwt:<identity>), where a superuser can audit it and the client cannot
  choose it.

  Background:
    Given the PostgreSQL service account "svc_proxy" with a SCRAM password
    And the backend asks "svc_proxy" for scram authentication
    And a local OIDC issuer

  Scenario Outline: <client> connects with a Keycloak token over verified TLS
    Given the proxy runs with token authentication
    And a Keycloak token for "alice@example.com"
    When <client> connects with the token, asking for application_name "reporting-tool", and runs "SELECT current_user, current_setting('application_name')"
    Then the result is "svc_proxy|jwt:alice@example.com"
    And no token appears in the proxy logs

    Examples:
      | client        |
      | psql          |
      | pgx           |
      | node-postgres |

  Scenario: a superuser sees the person behind the service account in pg_stat_activity
    Given the proxy runs with token authentication
    And a Keycloak token for "alice@example.com"
    When pgx connects with the token
    Then the login succeeds
    And a superuser sees the session in pg_stat_activity as user "svc_proxy" with application_name "jwt:alice@example.com"
    And the proxy log says "alice@example.com"

  Scenario: an EC-signed token is accepted as well as an RSA-signed one
    Given the proxy runs with token authentication
    And a Keycloak token for "erin@example.com" with:
      | algorithm | ES256 |
    When pgx connects with the token, asking for application_name "x", and runs "SELECT current_setting('application_name')"
    Then the result is "jwt:erin@example.com"

  Scenario: the identity falls back to preferred_username and is cut to PostgreSQL's 63 bytes
    Given the proxy runs with token authentication and:
      | OIDC_IDENTITY_CLAIMS | upn,preferred_username,sub |
    And a Keycloak token for "a-very-long-service-principal-name-that-exceeds-the-postgres-limit@example.com"
    When pgx connects with the token, asking for application_name "x", and runs "SELECT current_setting('application_name'), octet_length(current_setting('application_name'))"
    Then the result is "jwt:a-very-long-service-principal-name-that-exceeds-the-postgre|63"

  Scenario: a token is accepted with a database listed in OIDC_ALLOWED_DATABASES
    Given the databases "reports" and "payroll" exist
    And the proxy runs with token authentication and:
      | OIDC_ALLOWED_DATABASES | testdb,reports |
    And a Keycloak token for "alice@example.com"
    When pgx connects with the token to database "reports"
    Then the login succeeds
    When the session runs "SELECT current_database(), current_user"
    Then the statement succeeds with "reports|svc_proxy"
    When pgx connects with the token to database "payroll"
    Then the login is refused with SQLSTATE 28000 and a message containing "database \"payroll\" is not allowed"
    And the auth failure counter for reason "database_not_allowed" is 1

  Scenario: an Entra ID v1 token is accepted with OIDC_ISSUER_OVERRIDE; the identity is the upn
    Given a local OIDC issuer shaped like Entra ID for tenant "9188040d-6c67-4c5b-b112-36a304b66dad"
    And the proxy runs with token authentication and:
      | OIDC_ISSUER_OVERRIDE | https://sts.windows.net/9188040d-6c67-4c5b-b112-36a304b66dad/ |
      | OIDC_AUDIENCE        | api://pgproxy                                                  |
      | OIDC_ALLOWED_ROLES   | Database.Read                                                  |
    And an Entra ID token for "bob@contoso.onmicrosoft.com" in tenant "9188040d-6c67-4c5b-b112-36a304b66dad" for audience "api://pgproxy" with app role "Database.Read"
    When pgx connects with the token, asking for application_name "x", and runs "SELECT current_user, current_setting('application_name')"
    Then the result is "svc_proxy|jwt:bob@contoso.onmicrosoft.com"
    Given an Entra ID token for "carol@contoso.onmicrosoft.com" in tenant "9188040d-6c67-4c5b-b112-36a304b66dad" for audience "api://pgproxy"
    When pgx connects with the token
    Then the login is refused with SQLSTATE 28000 and a message containing "does not carry any of the required roles (Database.Read)"
    Given an Entra ID token for "dave@contoso.onmicrosoft.com" in tenant "00000000-dead-beef-0000-000000000000" for audience "api://pgproxy" with app role "Database.Read"
    When pgx connects with the token
    Then the login is refused with SQLSTATE 28000 and a message containing "is not the configured issuer"
    And the auth failure counter for reason "wrong_issuer" is 1
    And no token appears in the proxy logs

  Scenario: a non-ASCII identity is percent-encoded, so PostgreSQL stores it exactly and unambiguously
    # PostgreSQL keeps only printable ASCII in application_name ('?' or \xNN for the rest);
    # the proxy encodes every other byte, so two people never share one audit name.
    Given the proxy runs with token authentication
    And a Keycloak token for "zoë.müller@example.com"
    When pgx connects with the token
    Then the login succeeds
    When the session runs "SELECT current_setting('application_name')"
    Then the statement succeeds with "jwt:zo%C3%AB.m%C3%BCller@example.com"
    When the session runs "RESET ALL"
    Then the statement succeeds with ""
    And the session is still usable and application_name is "jwt:zo%C3%AB.m%C3%BCller@example.com"

  Scenario: the token is checked at login only: a session outlives the token's expiry
    Given the proxy runs with token authentication and:
      | OIDC_CLOCK_LEEWAY | 0 |
    And a Keycloak token for "alice@example.com" with:
      | expires in | 2s |
    When pgx connects with the token
    Then the login succeeds
    Given 3 seconds pass
    When the session runs "SELECT current_setting('application_name')"
    Then the statement succeeds with "jwt:alice@example.com"
    When pgx connects with the token
    Then the login is refused with SQLSTATE 28000 and a message containing "token expired at"
