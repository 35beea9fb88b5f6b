Feature: RDS and Aurora IAM logins
  The proxy logs in with an RDS IAM token wherever it logs in itself: the
  service account of token sessions, the analysis and catalog connections,
  the shunt node and the reporter. The stand-ins check every token (SigV4,
  rds-db connect, host:port, DBUser, region, a known unexpired key) and
  refuse plaintext, as RDS does.

  Background:
    Given an AWS account in "eu-west-1"

  Scenario: token sessions reach the fast node as the IAM user
    Given the proxy runs with RDS IAM
    When token user "alice@example.com" opens session "a"
    Then session "a" runs "SELECT current_user, (SELECT name FROM node)" and gets "iam_user|fast"
    And session "a" runs "SELECT current_setting('application_name') LIKE '%alice@example.com%'" and gets "true"
    And the fast stand-in passed a login of "iam_user" signed by the account's own key
    And the proxy's logs mention "IAM tokens"
    And the proxy's logs hold no IAM token and no AWS secret

  Scenario: the analysis, the shunt node and the reporter log in with IAM too
    Given the proxy runs with RDS IAM and
      | ANALYSIS_ENABLED  | true                                                                |
      | PROXY_MODE        | shunt                                                               |
      | ANALYSIS_MAX_ROWS | 1000                                                                |
      | SHUNT_NODE_URL    | postgres://{shunt}/testdb?sslmode=verify-full                       |
      | REPORTER_DB_URL   | postgres://iam_user@{reporter}/ops?sslmode=verify-full&sslrootcert={ca} |
    When token user "bob@example.com" opens session "b"
    Then session "b" runs "SELECT name FROM node" and gets "fast"
    And session "b" runs "SELECT (SELECT name FROM node), count(*) FROM big" and gets "shunt|20000"
    And the shunt stand-in passed a login of "iam_user" signed by the account's own key
    And within 15 seconds the reporter database holds an issue
    And the reporter stand-in passed a login of "iam_user" signed by the account's own key
    And the proxy's logs hold no IAM token and no AWS secret

  Scenario: with passthrough authentication the client's own IAM token goes through
    Given the proxy runs with RDS IAM and
      | OIDC_AUTH        |      |
      | ANALYSIS_ENABLED | true |
    When "app_user" opens session "c" with an RDS IAM token of its own
    Then session "c" runs "SELECT current_user, count(*) FROM node" and gets "app_user|1"
    And the fast stand-in passed a login of "app_user" signed by the account's own key
    And the fast stand-in passed a login of "iam_user" signed by the account's own key
    And the proxy's logs mention "IAM serves only the proxy's own connections"

  Scenario: a token the server refuses gives the client a hint within seconds
    Given the proxy runs with RDS IAM and
      | PG_AWS_REGION | us-east-1 |
    Then a new token session is refused with SQLSTATE 28000 within 10 seconds
    And the refusal's message mentions "the database refused the proxy's IAM login: PAM authentication failed"
    And the refusal's hint mentions "rds-db:connect"
    And the refusal's hint mentions "PG_AWS_REGION=us-east-1"
    And the fast stand-in refused a login of "iam_user"
    And within 5 seconds the metric pgproxy_backend_auth_failures_total{method="iam"} is at least 1
    And the proxy's logs mention "the server refused the proxy's login"
    And the proxy's logs hold no IAM token and no AWS secret

  Scenario: IAM without TLS to the server, or with a password, stops start-up
    Then the proxy refuses to start with
      | PG_BACKEND_URL | postgres://{fast}/testdb?sslmode=require |
    And its error names "verify-full"
    And the proxy refuses to start with
      | PG_BACKEND_URL | postgres://iam_user:secret@{fast}/testdb?sslmode=verify-full |
    And its error names "PG_IAM_AUTH=true with a password"
    And the proxy refuses to start with
      | PG_AWS_REGION |  |
    And its error names "PG_AWS_REGION is required"
    And the proxy refuses to start with
      | PG_BACKEND_URL | postgres://{fast}/testdb?sslmode=verify-ca |
    And its error names "needs sslmode=verify-full"
    And the proxy refuses to start with
      | PG_BACKEND_URL | postgres://{fast}/testdb?sslmode=verify-full&sslmode=disable |
    And its error names "gives sslmode 2 times"
    And the proxy refuses to start with
      | ANALYSIS_ENABLED | true                                                                                    |
      | REPORTER_DB_URL  | postgres://iam_user@{reporter}/ops?sslmode=verify-full&sslrootcert={ca}&host=127.0.0.1,localhost |
    And its error names "a reporter that logs in with an IAM token needs sslmode=verify-full"
