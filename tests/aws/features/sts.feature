Feature: AWS credentials: cross-account roles through STS, refresh, outages, web identity
  The tokens are signed with credentials of the default AWS chain, or of a
  role assumed through STS (PG_IAM_ROLE_ARN); the STS stand-in speaks the
  query API and answers in STS's XML.

  Scenario: a role of another account is assumed with its external ID
    Given an AWS account in "eu-west-1"
    And the role "arn:aws:iam::444455556666:role/pgproxy-rds" may be assumed with the external ID "ext-7"
    And the proxy runs with RDS IAM and
      | PG_IAM_ROLE_ARN     | arn:aws:iam::444455556666:role/pgproxy-rds |
      | PG_IAM_EXTERNAL_ID  | ext-7                                      |
      | PG_IAM_SESSION_NAME | pgproxy-e2e                                |
    When token user "carol@example.com" opens session "a"
    Then session "a" runs "SELECT current_user" and gets "iam_user"
    And STS was asked to AssumeRole "arn:aws:iam::444455556666:role/pgproxy-rds" with the external ID "ext-7" and the session name "pgproxy-e2e"
    And the fast stand-in passed a login of "iam_user" signed by the role "arn:aws:iam::444455556666:role/pgproxy-rds"
    And the proxy's logs hold no IAM token and no AWS secret

  Scenario: a wrong external ID is refused with a clear error
    Given an AWS account in "eu-west-1"
    And the role "arn:aws:iam::444455556666:role/pgproxy-rds" may be assumed with the external ID "ext-7"
    And the proxy runs with RDS IAM and
      | PG_IAM_ROLE_ARN    | arn:aws:iam::444455556666:role/pgproxy-rds |
      | PG_IAM_EXTERNAL_ID | ext-8                                      |
    Then a new token session is refused with SQLSTATE 08006 within 15 seconds
    And the refusal's message mentions "STS AssumeRole: AccessDenied"
    And the refusal's message does not mention "444455556666"
    And the refusal's hint mentions "PG_IAM_ROLE_ARN"

  Scenario: the role's credentials are fetched again before they expire
    Given an AWS account in "eu-west-1" whose STS credentials last 4 seconds
    And the role "arn:aws:iam::444455556666:role/pgproxy-rds" may be assumed
    And the proxy runs with RDS IAM and
      | PG_IAM_ROLE_ARN | arn:aws:iam::444455556666:role/pgproxy-rds |
    When token user "dave@example.com" opens session "a"
    And 4 seconds pass
    And token user "dave@example.com" opens session "b"
    Then session "b" runs "SELECT current_user" and gets "iam_user"
    And the fast stand-in passed logins signed by 2 different keys

  Scenario: STS down: new logins fail clearly, open sessions go on, and it is retried
    Given an AWS account in "eu-west-1" whose STS credentials last 4 seconds
    And the role "arn:aws:iam::444455556666:role/pgproxy-rds" may be assumed
    And the proxy runs with RDS IAM and
      | PG_IAM_ROLE_ARN | arn:aws:iam::444455556666:role/pgproxy-rds |
    And token user "erin@example.com" opens session "a"
    When STS is down
    And 4 seconds pass
    Then a new token session is refused with SQLSTATE 08006 within 20 seconds
    And the refusal's message mentions "STS AssumeRole: ServiceUnavailable"
    And session "a" runs "SELECT current_user" and gets "iam_user"
    When STS is up again
    And token user "erin@example.com" opens session "b"
    Then session "b" runs "SELECT current_user" and gets "iam_user"

  Scenario: a web identity token (IRSA) is exchanged for the role's credentials
    Given an AWS account in "eu-west-1"
    And the role "arn:aws:iam::111122223333:role/pgproxy-irsa" may be assumed with a web identity token
    And the proxy runs with RDS IAM and
      | AWS_ACCESS_KEY_ID           |                                          |
      | AWS_SECRET_ACCESS_KEY       |                                          |
      | AWS_ROLE_ARN                | arn:aws:iam::111122223333:role/pgproxy-irsa |
      | AWS_WEB_IDENTITY_TOKEN_FILE | {webtoken}                               |
    When token user "frank@example.com" opens session "a"
    Then session "a" runs "SELECT current_user" and gets "iam_user"
    And STS was asked to AssumeRoleWithWebIdentity "arn:aws:iam::111122223333:role/pgproxy-irsa"
    And the fast stand-in passed a login of "iam_user" signed by the role "arn:aws:iam::111122223333:role/pgproxy-irsa"
