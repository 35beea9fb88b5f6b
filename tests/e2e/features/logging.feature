@logging
Feature: Logs keep secrets out
  Even at LOG_LEVEL=debug the proxy never writes a password or a query parameter to its log.

  Scenario: passwords and parameters stay out of the debug log
    Given a PostgreSQL server
    And a proxy in front of it with:
      | LOG_LEVEL  | debug |
      | LOG_FORMAT | json  |
    When "clear_user" connects with password "clear_pass"
    Then the connection succeeds
    And the session runs "SELECT $1::text" with the parameter "e2e-secret-parameter-4711"
    And the session runs "SELECT 1/0" and fails with SQLSTATE "22012"
    When "scram_user" connects with password "e2e-wrong-password-0815"
    Then the connection is refused with SQLSTATE "28P01"
    When "md5_user" connects with password "md5_pass"
    Then the connection is refused with SQLSTATE "28000"
    And the proxy log never contains "clear_pass"
    And the proxy log never contains "e2e-secret-parameter-4711"
    And the proxy log never contains "e2e-wrong-password-0815"
    And the proxy log never contains "md5_pass"
