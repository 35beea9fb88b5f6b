Feature: Backends with MD5 passwords and with TLS
  The proxy logs in to the backend itself as the service account, so the backend's method is
  the proxy's business: an MD5 backend works whatever ALLOW_MD5_AUTH says (that setting is
  about relaying MD5 challenges to clients), and a TLS backend is verified with
  PG_BACKEND_CA_PATH.

  Scenario Outline: the service account's password is stored as MD5 (ALLOW_MD5_AUTH=<allow>)
    Given the PostgreSQL service account "svc_md5" with an MD5 password
    And the backend asks "svc_md5" for md5 authentication
    And a local OIDC issuer
    And the proxy runs with token authentication and:
      | ALLOW_MD5_AUTH | <allow> |
    And a Keycloak token for "alice@example.com"
    When pgx connects with the token, asking for application_name "x", and runs "SELECT current_user, current_setting('application_name')"
    Then the result is "svc_md5|jwt:alice@example.com"

    Examples:
      | allow |
      | false |
      | true  |

  Scenario: the backend accepts only TLS and the proxy verifies its certificate
    Given a backend PostgreSQL cluster that accepts only TLS connections
    And the PostgreSQL service account "svc_proxy" with a SCRAM password
    And the backend asks "svc_proxy" for scram authentication
    And a local OIDC issuer
    And the proxy runs with token authentication
    And a Keycloak token for "alice@example.com"
    When pgx connects with the token, asking for application_name "x", and runs "SELECT current_user, current_setting('application_name'), ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    Then the result is "svc_proxy|jwt:alice@example.com|true"
    When psql connects with the token and runs "SELECT current_setting('application_name')"
    Then the result is "jwt:alice@example.com"
    And no token appears in the proxy logs
