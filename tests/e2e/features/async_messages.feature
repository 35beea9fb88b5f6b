@async-messages
Feature: Messages the server sends on its own
  Notifications, notices and parameter changes reach the client through the proxy, including
  a notification that arrives while the client is idle.

  Background:
    Given a PostgreSQL server
    And a proxy in front of it
    And session "listener" is connected as "scram_user"
    And session "notifier" is connected as "clear_user"

  Scenario: a NOTIFY reaches a client that is idle in LISTEN
    Given session "listener" runs "LISTEN e2e_jobs"
    When session "notifier" runs "NOTIFY e2e_jobs, 'job 42 done'"
    Then session "listener" receives a notification on "e2e_jobs" with payload "job 42 done" within 5 seconds

  Scenario: RAISE NOTICE reaches the client
    When session "listener" runs "DO $$ BEGIN RAISE NOTICE 'hello from %', 'plpgsql'; END $$"
    Then session "listener" has received the notice "hello from plpgsql"

  Scenario: SET changes are reported with ParameterStatus
    When session "listener" runs "SET application_name = 'e2e-reports'"
    And session "listener" runs "SET TimeZone = 'Asia/Tokyo'"
    Then session "listener" sees the server parameter "application_name" as "e2e-reports"
    And session "listener" sees the server parameter "TimeZone" as "Asia/Tokyo"
    And session "listener" runs "SHOW TimeZone" and gets "Asia/Tokyo"

  Scenario: the FunctionCall message (libpq's fast-path interface)
    When session "listener" calls "int4pl" with 40 and 2 through a FunctionCall message and gets 42
    Then session "listener" is still usable

  Scenario: a notice reaches the client while its statement still runs
    When session "listener" starts "DO $$ BEGIN RAISE NOTICE 'step 1 of 2'; PERFORM pg_sleep(3); END $$"
    Then session "listener" receives the notice "step 1 of 2" within 2 seconds, before its statement ends
    And the query of session "listener" succeeds within 5 seconds
