@cancel
Feature: Cancelling a running query
  The proxy gives each client its own cancel key. A CancelRequest with that key cancels the
  client's query on the right backend; any other key does nothing and gets no answer.

  Background:
    Given a PostgreSQL server
    And a proxy in front of it
    And session "A" is connected as "scram_user"

  Scenario: a client cancels its long query and keeps using the session
    When session "A" starts "SELECT pg_sleep(30)"
    And session "A" cancels its query
    Then the query of session "A" fails with SQLSTATE "57014" within 5 seconds
    And session "A" is still usable
    And the metric pgproxy_cancel_requests_total{result="forwarded"} is 1

  Scenario: a CancelRequest with a random key does nothing and reveals nothing
    When session "A" starts "SELECT pg_sleep(2)"
    And a CancelRequest with a random key is sent to the proxy
    Then the proxy answered nothing and closed that connection
    And the query of session "A" succeeds within 5 seconds
    And the metric pgproxy_cancel_requests_total{result="unknown_key"} is 1

  Scenario: a CancelRequest with the right process id but a wrong secret does nothing
    When session "A" starts "SELECT pg_sleep(2)"
    And a CancelRequest with the process id of session "A" and a wrong secret key is sent to the proxy
    Then the proxy answered nothing and closed that connection
    And the query of session "A" succeeds within 5 seconds

  Scenario: cancelling one session's query leaves another session's query running
    Given session "B" is connected as "scram_user"
    When session "A" starts "SELECT pg_sleep(2)"
    And session "B" starts "SELECT pg_sleep(2)"
    And session "A" cancels its query
    Then the query of session "A" fails with SQLSTATE "57014" within 5 seconds
    And the query of session "B" succeeds within 5 seconds
