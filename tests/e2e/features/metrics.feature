@metrics
Feature: Prometheus metrics
  /metrics on HEALTH_CHECK_ADDR exposes what an operator watches: connections, statement
  latency, bytes relayed, errors by SQLSTATE class and refused connections by reason.

  Scenario: traffic, errors and refusals show up in the metrics
    Given a PostgreSQL server
    And a proxy in front of it
    And session "A" is connected as "scram_user"
    When session "A" runs "SELECT generate_series(1, 1000)"
    And session "A" runs "SELEC 1" and fails with SQLSTATE "42601"
    And session "A" runs "SELECT 1/0" and fails with SQLSTATE "22012"
    And "md5_user" connects with password "md5_pass"
    Then the metric pgproxy_client_connections_total is at least 2
    And the metric pgproxy_client_connections_active is 1
    And the metric pgproxy_statement_duration_seconds_count is at least 3
    And the metric pgproxy_client_to_backend_bytes_total is at least 30
    And the metric pgproxy_backend_to_client_bytes_total is at least 5000
    And the metric pgproxy_errors_total{class="42"} is 1
    And the metric pgproxy_errors_total{class="22"} is 1
    And the metric pgproxy_errors_total{class="28"} is 1
    And the metric pgproxy_backend_connect_seconds_count is at least 1
