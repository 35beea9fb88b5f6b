Feature: ElastiCache / Valkey IAM for the decision cache
  With VALKEY_IAM_AUTH the decision cache sends AUTH with an ElastiCache IAM
  token (SigV4 presigned elasticache connect for the cache and user) over
  TLS, and authenticates live connections again before the token, or the
  credentials that signed it, expire.

  Scenario: the cache logs in with IAM tokens and live connections authenticate again
    Given an AWS account in "eu-west-1" whose STS credentials last 6 seconds
    And the role "arn:aws:iam::444455556666:role/pgproxy-cache" may be assumed
    And an ElastiCache stand-in for the cache "decisions" and the IAM user "pgproxy-cache"
    And the proxy runs with RDS IAM and
      | ANALYSIS_ENABLED    | true                                         |
      | VALKEY_URL          | rediss://{valkey}                            |
      | VALKEY_IAM_AUTH     | true                                         |
      | VALKEY_IAM_USER     | pgproxy-cache                                |
      | VALKEY_CACHE_NAME   | decisions                                    |
      | VALKEY_IAM_ROLE_ARN | arn:aws:iam::444455556666:role/pgproxy-cache |
      | SSL_CERT_FILE       | {ca}                                         |
    Then within 15 seconds the metric pgproxy_decision_cache_valkey_up is 1
    When token user "grace@example.com" opens session "a"
    Then session "a" runs "SELECT count(*) FROM node" and gets "1"
    And within 10 seconds redis holds a decision
    And within 20 seconds a live Valkey connection authenticates again with a newer key
    And session "a" runs "SELECT count(*) FROM node WHERE name = 'fast'" and gets "1"
    And the metric pgproxy_decision_cache_valkey_up is 1
    And the proxy's logs hold no IAM token and no AWS secret

  Scenario: a token for another cache is refused and the proxy goes on without Valkey
    Given an AWS account in "eu-west-1"
    And an ElastiCache stand-in for the cache "decisions" and the IAM user "pgproxy-cache"
    And the proxy runs with RDS IAM and
      | ANALYSIS_ENABLED  | true              |
      | VALKEY_URL        | rediss://{valkey} |
      | VALKEY_IAM_AUTH   | true              |
      | VALKEY_IAM_USER   | pgproxy-cache     |
      | VALKEY_CACHE_NAME | other-cache       |
      | SSL_CERT_FILE     | {ca}              |
    When token user "heidi@example.com" opens session "a"
    Then session "a" runs "SELECT count(*) FROM node" and gets "1"
    And the ElastiCache stand-in refused a token
    And the metric pgproxy_decision_cache_valkey_up is 0
    And the proxy's logs hold no IAM token and no AWS secret
