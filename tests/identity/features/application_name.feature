Feature: The audited application_name cannot be changed by the client
  A token session starts with application_name = jwt:<identity>. Statements that would change
  it are refused with SQLSTATE 42501 and the session goes on; anything that changes it where
  the statement check cannot see (a function, a DO block) ends the session with FATAL 42501
  as soon as PostgreSQL reports the new value.

  Background:
    Given the PostgreSQL service account "svc_proxy" with a SCRAM password
    And a local OIDC issuer
    And the proxy runs with token authentication
    And a Keycloak token for "alice@example.com"
    And pgx connects with the token
    And the login succeeds

  Scenario Outline: <statement> is refused and the session goes on
    When the session runs "<statement>"
    Then the statement fails with SQLSTATE 42501 and a message containing "application_name is set by pgproxy to the authenticated identity and cannot be changed"
    And the session is still usable and application_name is "jwt:alice@example.com"

    Examples:
      | statement                                                       |
      | SET application_name = 'x'                                      |
      | SET SESSION application_name TO 'x'                             |
      | set Application_Name = DEFAULT                                  |
      | RESET application_name                                          |
      | SELECT set_config('application_name', 'x', false)               |
      | SELECT pg_catalog.set_config('application_name', 'x', false)    |
      | SELECT set_config(lower('APPLICATION_NAME'), 'x', false)        |
      | UPDATE pg_settings SET setting = 'x' WHERE name = 'application_name' |
      | SELECT 1; SET application_name = 'x'                            |

  Scenario: a refusal after a statement that ends in a line comment still reaches the client
    When the session runs the text:
      """
      SELECT 1 -- a comment
      ; SET application_name = 'x'
      """
    Then the statement fails with SQLSTATE 42501 and a message containing "cannot be changed"
    And the session is still usable and application_name is "jwt:alice@example.com"

  Scenario: set_config through the extended protocol with a parameter is refused
    When the session runs "SELECT set_config('application_name', $1, false)" with the parameter "x"
    Then the statement fails with SQLSTATE 42501 and a message containing "cannot be changed"
    And the session is still usable and application_name is "jwt:alice@example.com"
    When the session runs "SELECT $1::text || '!'" with the parameter "still here"
    Then the statement succeeds with "still here!"

  Scenario: other settings can still be changed, and RESET ALL keeps the identity
    When the session runs "SET search_path = public"
    Then the statement succeeds with ""
    When the session runs "SELECT set_config('statement_timeout', '5s', false)"
    Then the statement succeeds with "5s"
    When the session runs "RESET ALL"
    Then the statement succeeds with ""
    And the session is still usable and application_name is "jwt:alice@example.com"

  Scenario: a function that changes application_name inside ends the session (the backstop)
    Given a plpgsql function "rename_me(text)" that calls set_config('application_name', $1, false) inside
    When the session runs "SELECT rename_me('somebody-else')"
    Then the session is ended with a FATAL error 42501 saying "application_name is set by pgproxy for auditing and cannot be changed"

  Scenario: a DO block that changes application_name ends the session (the backstop)
    When the session runs "DO $$ BEGIN PERFORM set_config('application_name', 'somebody-else', false); END $$"
    Then the session is ended with a FATAL error 42501 saying "cannot be changed"

  Scenario: a fast-path FunctionCall of set_config ends the session (the backstop)
    When the session calls set_config('application_name', 'x', false) through a fast-path FunctionCall
    Then the session is ended with a FATAL error 42501 saying "cannot be changed"

  Scenario: a refused statement inside a transaction block aborts the transaction, as any error does
    # The proxy sends PostgreSQL a statement that raises the refusal in place of the refused
    # one, so the server applies its own error semantics.
    When the session runs "CREATE TABLE IF NOT EXISTS identity_tx (who text)"
    And the session runs "BEGIN"
    And the session runs "INSERT INTO identity_tx VALUES ('before')"
    And the session runs "SET application_name = 'x'"
    Then the statement fails with SQLSTATE 42501 and a message containing "cannot be changed"
    And the session's transaction status is "E"
    When the session runs "INSERT INTO identity_tx VALUES ('after')"
    Then the statement fails with SQLSTATE 25P02 and a message containing "aborted"
    When the session runs "ROLLBACK"
    And the session runs "SELECT count(*) FROM identity_tx"
    Then the statement succeeds with "0"

  Scenario Outline: a refused statement in a pipeline fails the whole pipeline, as any error does (<statement>)
    # One extended-protocol pipeline with a single Sync: PostgreSQL rolls back its implicit
    # transaction on any error, so the insert sent before the refused statement is not
    # committed either, and the one after it is skipped.
    When the session runs "CREATE TABLE IF NOT EXISTS identity_pipe (n int)"
    And the session runs "TRUNCATE identity_pipe"
    And the session runs "INSERT INTO identity_pipe VALUES (0)"
    Then the table identity_pipe has 1 row
    When the session sends one pipeline: insert 1, "<statement>", insert 2
    Then the pipeline fails with SQLSTATE 42501
    And the table identity_pipe has 1 row
    And the session's transaction status is "I"
    And the session is still usable and application_name is "jwt:alice@example.com"
    When the session runs "SELECT coalesce(string_agg(n::text, ',' ORDER BY n), '') FROM identity_pipe"
    Then the statement succeeds with "0"

    Examples:
      | statement                                            |
      | SELECT set_config('application_name', $1, false)     |
      | SET application_name = 'x'                           |
      | RESET application_name                               |
      | UPDATE pg_settings SET setting = $1 WHERE name = 'application_name' |

  Scenario Outline: the startup packet cannot set application_name either (<how>)
    When pgx connects 10 times with the token and the startup parameter "<name>" set to "<value>"
    Then every one of those sessions has application_name "jwt:alice@example.com"

    Examples:
      | how                      | name             | value                          |
      | options -c               | options          | -c application_name=spoofed    |
      | options --               | options          | --application_name=spoofed     |

    # tests/BUGS.md: "identity: a startup parameter spelled APPLICATION_NAME sets the audited name".
    Examples:
      | how                      | name             | value                          |
      | upper-case name          | APPLICATION_NAME | spoofed                        |
      | mixed-case name          | Application_Name | spoofed                        |
