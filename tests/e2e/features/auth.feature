@auth
Feature: Client authentication through the proxy
  The proxy relays the database's own password challenge to the client, so every user logs in
  with the credentials and the method PostgreSQL already has for them. MD5 is weak and is
  refused unless the operator allows it.

  Background:
    Given a PostgreSQL server

  Scenario Outline: a <method> user logs in with the password PostgreSQL knows
    Given a proxy in front of it
    When "<user>" connects with password "<password>"
    Then the connection succeeds
    And the session runs "SELECT current_user" and gets "<user>"

    Examples:
      | method             | user       | password   |
      | SCRAM-SHA-256      | scram_user | scram_pass |
      | cleartext password | clear_user | clear_pass |

  Scenario: a trust user logs in without a password
    Given a proxy in front of it
    When "trust_user" connects
    Then the connection succeeds
    And the session runs "SELECT current_user" and gets "trust_user"

  Scenario: MD5 is refused by default with a message naming the setting that allows it
    Given a proxy in front of it
    When "md5_user" connects with password "md5_pass"
    Then the connection is refused with SQLSTATE "28000"
    And the error hint mentions "ALLOW_MD5_AUTH"
    And the proxy is still serving new sessions

  Scenario: MD5 is accepted when ALLOW_MD5_AUTH is true
    Given a proxy in front of it with:
      | ALLOW_MD5_AUTH | true |
    When "md5_user" connects with password "md5_pass"
    Then the connection succeeds
    And the session runs "SELECT current_user" and gets "md5_user"

  Scenario: a wrong password is refused and counted
    Given a proxy in front of it
    When "scram_user" connects with password "not-the-password"
    Then the connection is refused with SQLSTATE "28P01"
    And the metric pgproxy_auth_failures_total{reason="invalid_password"} is 1
    And the proxy is still serving new sessions
