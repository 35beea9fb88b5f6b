@ipv6
Feature: IPv6
  The proxy listens on and connects to IPv6 addresses like IPv4 ones, cancel requests included.

  @dedicated-server
  Scenario: a client reaches PostgreSQL over IPv6 on both links, and cancels a query
    Given a dedicated PostgreSQL server listening on IPv6 loopback
    And a proxy listening on IPv6 loopback in front of it
    When "scram_user" connects with password "scram_pass"
    Then the connection succeeds
    And the session runs "SELECT family(inet_server_addr())" and gets "6"
    Given session "A" is connected as "scram_user"
    When session "A" starts "SELECT pg_sleep(30)"
    And session "A" cancels its query
    Then the query of session "A" fails with SQLSTATE "57014" within 5 seconds
    And /ready answers 200
