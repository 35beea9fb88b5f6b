Feature: The audit name in the statement text, for Redshift's stv_recents
  Redshift's stv_recents and stl_query show a statement's database user and text, never its
  application_name. With BACKEND_FLAVOR=redshift (or AUDIT_QUERY_COMMENT=on) every statement of
  a token session starts with /* application_name=jwt:<identity> */, so who ran it can be read
  there. No Redshift is reachable here: the backend PostgreSQL gets a stand-in stv_recents view
  with Redshift's column names, over pg_stat_activity (which shows each session's last
  statement as the server received it).

  Background:
    Given the PostgreSQL service account "svc_proxy" with a SCRAM password
    And a local OIDC issuer
    And the backend has a stand-in stv_recents view

  Scenario: simple and extended protocol statements carry the identity; the client sees its own results
    Given the proxy runs with token authentication and:
      | BACKEND_FLAVOR | redshift |
    And a Keycloak token for "alice@example.com"
    And pgx connects with the token
    When the session runs "SELECT 'comment one'"
    Then the statement succeeds with "comment one"
    And stv_recents has a statement of user "svc_proxy" reading "/* application_name=jwt:alice@example.com */ SELECT 'comment one'"
    When the session runs "SELECT $1::text || ' two'" with the parameter "comment"
    Then the statement succeeds with "comment two"
    And stv_recents has a statement of user "svc_proxy" reading "/* application_name=jwt:alice@example.com */ SELECT $1::text || ' two'"

  Scenario: each statement of a Query of several carries it
    Given the proxy runs with token authentication and:
      | AUDIT_QUERY_COMMENT | on |
    And a Keycloak token for "alice@example.com"
    And pgx connects with the token
    When the session runs "SELECT 'three a'; SELECT 'three b'"
    Then the statement succeeds with "three a"
    And stv_recents has a statement of user "svc_proxy" reading "/* application_name=jwt:alice@example.com */ SELECT 'three a';/* application_name=jwt:alice@example.com */  SELECT 'three b'"

  Scenario Outline: an error's position points into the client's text (<protocol>)
    Given the proxy runs with token authentication and:
      | BACKEND_FLAVOR | redshift |
    And a Keycloak token for "alice@example.com"
    And pgx connects with the token
    When the session runs "<statement>" in the <protocol> protocol
    Then the statement fails with SQLSTATE 42703 at position <position>

    Examples:
      | protocol | statement                                 | position |
      | simple   | SELECT nosuch_col                         | 8        |
      | extended | SELECT nosuch_col                         | 8        |
      | simple   | SELECT 'é'; SELECT 'ü', nosuch_col        | 25       |

  Scenario: an identity that would close the comment cannot end it early
    Given the proxy runs with token authentication and:
      | BACKEND_FLAVOR | redshift |
    And a Keycloak token for "eve*/ SELECT 1; /*@example.com"
    And pgx connects with the token
    When the session runs "SELECT 'four'"
    Then the statement succeeds with "four"
    And stv_recents has a statement of user "svc_proxy" reading "/* application_name=jwt:eve%2A%2F%20SELECT%201%3B%20%2F%2A@example.com */ SELECT 'four'"

  Scenario: with BACKEND_FLAVOR=postgres the text is sent as the client wrote it
    Given the proxy runs with token authentication
    And a Keycloak token for "alice@example.com"
    And pgx connects with the token
    When the session runs "SELECT 'five'"
    Then the statement succeeds with "five"
    And stv_recents has a statement of user "svc_proxy" reading "SELECT 'five'"

  Scenario: with a backslash in the text the comment goes first only, never inside a literal
    Given the proxy runs with token authentication and:
      | BACKEND_FLAVOR | redshift |
    And a Keycloak token for "alice@example.com"
    And pgx connects with the token
    When the session sends the Query "SET standard_conforming_strings = off"
    And the session sends the Query "SELECT 'x\';SELECT 1 --'"
    Then the statement succeeds with "x';SELECT 1 --"
    And stv_recents has a statement of user "svc_proxy" reading "/* application_name=jwt:alice@example.com */ SELECT 'x\';SELECT 1 --'"
