Feature: A real OpenID provider
  Tokens that come out of a real token endpoint through a real OAuth 2.0 grant (the zitadel
  OIDC library's provider, client_credentials grant, JWT access tokens) are accepted.

  Background:
    Given the PostgreSQL service account "svc_proxy" with a SCRAM password

  Scenario: a client_credentials token from the zitadel provider is accepted
    Given a zitadel OpenID provider with the client "reporting-job" whose tokens are for audience "pgproxy" and carry email "reporting@example.com"
    And the proxy runs with token authentication
    And a token from the zitadel provider through the client_credentials grant as "reporting-job"
    When pgx connects with the token, asking for application_name "x", and runs "SELECT current_user, current_setting('application_name')"
    Then the result is "svc_proxy|jwt:reporting@example.com"
    And no token appears in the proxy logs

  Scenario: a service-account token without email is identified by its subject
    Given a zitadel OpenID provider with the client "nightly-etl" whose tokens are for audience "pgproxy"
    And the proxy runs with token authentication
    And a token from the zitadel provider through the client_credentials grant as "nightly-etl"
    When psql connects with the token and runs "SELECT current_user, current_setting('application_name')"
    Then the result is "svc_proxy|jwt:service-account-nightly-etl"

  Scenario: a zitadel token for another audience is refused
    Given a zitadel OpenID provider with the client "other-app" whose tokens are for audience "grafana"
    And the proxy runs with token authentication
    And a token from the zitadel provider through the client_credentials grant as "other-app"
    When pgx connects with the token
    Then the login is refused with SQLSTATE 28000 and a message containing "does not include the configured audience"
    And the auth failure counter for reason "wrong_audience" is 1
