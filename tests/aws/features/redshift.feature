Feature: Redshift temporary credentials for the proxy's own logins
  With BACKEND_FLAVOR=redshift and PG_IAM_AUTH the proxy logs in with
  temporary database credentials: GetClusterCredentials for a provisioned
  cluster, Redshift Serverless GetCredentials for a workgroup, cached until
  shortly before they expire. The Redshift API stand-in speaks both APIs;
  the Redshift stand-in takes only the passwords it handed out.

  Background:
    Given an AWS account in "eu-west-1"

  Scenario: a provisioned cluster: GetClusterCredentials, shared by the logins
    Given the Redshift cluster "analytics" exists
    And the proxy runs with RDS IAM and
      | BACKEND_FLAVOR      | redshift                                         |
      | PG_BACKEND_URL      | postgres://{redshift}/testdb?sslmode=verify-full |
      | REDSHIFT_CLUSTER_ID | analytics                                        |
    When token user "ivan@example.com" opens session "a"
    And token user "judy@example.com" opens session "b"
    Then session "a" runs "SELECT current_user" and gets "IAM:iam_user"
    And session "b" runs "SELECT current_user, (SELECT name FROM node)" and gets "IAM:iam_user|fast"
    And the Redshift API handed out 1 database credential with GetClusterCredentials
    And the redshift stand-in passed a login of "IAM:iam_user" signed by the account's own key
    And the proxy's logs mention "Redshift IAM"
    And the proxy's logs hold no IAM token and no AWS secret

  Scenario: a serverless workgroup through an assumed role: the role's database user
    Given the Redshift Serverless workgroup "reports" exists
    And the role "arn:aws:iam::444455556666:role/pgproxy-redshift" may be assumed
    And the proxy runs with RDS IAM and
      | BACKEND_FLAVOR     | redshift                                         |
      | PG_BACKEND_URL     | postgres://{redshift}/testdb?sslmode=verify-full |
      | PG_IAM_USERNAME    |                                                  |
      | REDSHIFT_WORKGROUP | reports                                          |
      | PG_IAM_ROLE_ARN    | arn:aws:iam::444455556666:role/pgproxy-redshift  |
    When token user "mallory@example.com" opens session "a"
    Then session "a" runs "SELECT current_user" and gets "IAMR:pgproxy-redshift"
    And the Redshift API handed out 1 database credential with GetCredentials
    And the redshift stand-in passed a login of "IAMR:pgproxy-redshift" signed by the role "arn:aws:iam::444455556666:role/pgproxy-redshift"
    And the proxy's logs hold no IAM token and no AWS secret

  Scenario: credentials are fetched again before they expire
    Given the Redshift cluster "analytics" exists
    And Redshift database credentials last 3 seconds
    And the proxy runs with RDS IAM and
      | BACKEND_FLAVOR      | redshift                                         |
      | PG_BACKEND_URL      | postgres://{redshift}/testdb?sslmode=verify-full |
      | REDSHIFT_CLUSTER_ID | analytics                                        |
    When token user "niaj@example.com" opens session "a"
    And 3 seconds pass
    And token user "niaj@example.com" opens session "b"
    Then session "b" runs "SELECT current_user" and gets "IAM:iam_user"
    And the Redshift API handed out 2 database credentials with GetClusterCredentials

  Scenario: refused credentials give a hint, are dropped, and the next login asks again
    Given the Redshift cluster "analytics" exists
    And the proxy runs with RDS IAM and
      | BACKEND_FLAVOR      | redshift                                         |
      | PG_BACKEND_URL      | postgres://{redshift}/testdb?sslmode=verify-full |
      | REDSHIFT_CLUSTER_ID | analytics                                        |
    When token user "olivia@example.com" opens session "a"
    And the Redshift database credentials handed out so far are revoked
    Then a new token session is refused with SQLSTATE 28000 within 10 seconds
    And the refusal's hint mentions "redshift:GetClusterCredentials"
    And the redshift stand-in refused a login of "IAM:iam_user"
    And within 5 seconds the metric pgproxy_backend_auth_failures_total{method="iam"} is at least 1
    And session "a" runs "SELECT current_user" and gets "IAM:iam_user"
    When token user "olivia@example.com" opens session "b"
    Then session "b" runs "SELECT current_user" and gets "IAM:iam_user"
    And the Redshift API handed out 2 database credentials with GetClusterCredentials

  Scenario: Redshift IAM refuses what it cannot serve, at start-up
    Then the proxy refuses to start with
      | BACKEND_FLAVOR | redshift                                         |
      | PG_BACKEND_URL | postgres://{redshift}/testdb?sslmode=verify-full |
    And its error names "REDSHIFT_CLUSTER_ID or REDSHIFT_WORKGROUP is required"
    And the proxy refuses to start with
      | BACKEND_FLAVOR      | redshift                                         |
      | PG_BACKEND_URL      | postgres://{redshift}/testdb?sslmode=verify-full |
      | REDSHIFT_CLUSTER_ID | analytics                                        |
      | ANALYSIS_ENABLED    | true                                             |
      | PROXY_MODE          | shunt                                            |
      | SHUNT_NODE_URL      | postgres://{shunt}/testdb?sslmode=verify-full    |
    And its error names "SHUNT_NODE_URL needs a password with BACKEND_FLAVOR=redshift"
