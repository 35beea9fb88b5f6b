@protocol
Feature: Protocol versions
  A client may ask for a newer minor protocol version and for protocol options (_pq_.*). The
  proxy answers with NegotiateProtocolVersion, as PostgreSQL does, and the session goes on in
  protocol 3.0.

  Background:
    Given a PostgreSQL server
    And a proxy in front of it

  Scenario: protocol 3.2 with an unknown protocol option is negotiated down to 3.0
    When a raw client asks for protocol 3.2 as "trust_user" with option "_pq_.test" set to "on"
    Then the proxy answers NegotiateProtocolVersion with minor version 0 and unrecognised option "_pq_.test"
    And the raw session runs "SELECT 6 * 7" and gets "42"

  Scenario: pgx asking for protocol 3.2 works at 3.0
    When "scram_user" connects with password "scram_pass" with "max_protocol_version=3.2"
    Then the connection succeeds
    And the session runs "SELECT 6 * 7" and gets "42"
