@readiness
Feature: Readiness follows the backend
  /ready answers 200 only while a backend connection can be opened, so a load balancer stops
  sending clients to a proxy whose database is down. /health stays 200: the proxy is alive.

  @dedicated-server
  Scenario: /ready turns 503 while PostgreSQL is stopped and 200 when it is back
    Given a dedicated PostgreSQL server
    And a proxy in front of it
    Then /ready answers 200
    When the PostgreSQL server stops
    Then /ready answers 503 within 5 seconds
    And /health answers 200
    When "scram_user" connects with password "scram_pass"
    Then the connection is refused with SQLSTATE "08006"
    And the metric pgproxy_rejected_connections_total{reason="backend_unavailable"} is 1
    When the PostgreSQL server starts again
    Then /ready answers 200 within 10 seconds
    And the proxy is still serving new sessions
