@drain
Feature: Graceful shutdown
  On SIGTERM the proxy stops accepting clients and reports not-ready, lets running statements
  finish, and exits with status 0. Sessions still busy after SHUTDOWN_DRAIN_TIMEOUT are closed
  with SQLSTATE 57P01.

  Background:
    Given a PostgreSQL server

  Scenario: a running query finishes during the drain, then the proxy exits 0
    Given a proxy in front of it with:
      | SHUTDOWN_DRAIN_TIMEOUT | 4s |
    And session "idle" is connected as "scram_user"
    And session "busy" is connected as "scram_user"
    When session "busy" starts "SELECT pg_sleep(2)"
    And the proxy receives SIGTERM
    Then /ready answers 503 within 1 seconds
    And new connections are refused
    And the query of session "busy" succeeds within 5 seconds
    And the proxy exits with code 0 within 6 seconds
    And session "idle" is ended with one of SQLSTATE "57P01"

  Scenario: a query still running at the drain timeout is ended with 57P01
    Given a proxy in front of it with:
      | SHUTDOWN_DRAIN_TIMEOUT | 1s |
    And session "busy" is connected as "scram_user"
    When session "busy" starts "SELECT pg_sleep(30)"
    And the proxy receives SIGTERM
    Then the query of session "busy" fails with SQLSTATE "57P01" within 5 seconds
    And the proxy exits with code 0 within 5 seconds

  Scenario: SIGINT drains like SIGTERM
    Given a proxy in front of it
    And session "idle" is connected as "scram_user"
    When session "idle" disconnects
    And the proxy receives SIGINT
    Then the proxy exits with code 0 within 5 seconds
