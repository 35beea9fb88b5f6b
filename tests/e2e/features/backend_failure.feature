@backend-failure
Feature: Backend failures stay contained
  When PostgreSQL ends one backend connection, only the client of that connection sees an
  error. When the whole server goes away, clients get an error, /ready reports it, and new
  sessions work again as soon as the server is back.

  Scenario: an administrator terminates one backend
    Given a PostgreSQL server
    And a proxy in front of it
    And session "A" is connected as "scram_user"
    And session "B" is connected as "scram_user"
    When the superuser terminates the backend of session "A"
    Then session "A" is ended with one of SQLSTATE "57P01 08006"
    And session "B" is still usable
    And the proxy is still serving new sessions

  Scenario: a backend is terminated while its query runs
    Given a PostgreSQL server
    And a proxy in front of it
    And session "A" is connected as "scram_user"
    And session "B" is connected as "scram_user"
    When session "A" starts "SELECT pg_sleep(30)"
    And the superuser terminates the backend of session "A"
    Then the query of session "A" fails with one of SQLSTATE "57P01 08006" within 5 seconds
    And session "B" is still usable

  @dedicated-server
  Scenario: the whole server is killed and started again
    Given a dedicated PostgreSQL server
    And a proxy in front of it
    And session "A" is connected as "scram_user"
    And session "B" is connected as "scram_user"
    When session "B" starts "SELECT pg_sleep(30)"
    And the PostgreSQL server is killed
    Then the query of session "B" fails with one of SQLSTATE "57P01 57P02 08006" within 5 seconds
    And session "A" is ended with one of SQLSTATE "57P01 57P02 08006"
    And /ready answers 503 within 5 seconds
    When the PostgreSQL server starts again
    Then /ready answers 200 within 10 seconds
    And the proxy is still serving new sessions
