Feature: Connect-time redirect of clients in a cgroup
  `pgproxy agent` attaches its eBPF programs (cgroup/connect4|6, sockops, cgroup/getsockopt,
  cgroup/getpeername4|6) to one cgroup v2, INTERCEPT_CGROUP. A client inside that cgroup that
  dials an intercepted database (INTERCEPT_TARGETS) is sent to the agent's listener, and the
  agent dials the address the client dialled. Clients outside the cgroup connect directly.

  Every check of "through the agent" or "directly" reads pg_stat_activity while the session
  runs and looks up who holds the TCP socket at its client_addr:client_port: the agent process,
  or the client process itself.

  Background:
    Given a child cgroup
    And the agent runs for the cgroup with targets "{pg}"

  Scenario: psql inside the cgroup goes through the agent
    When psql runs inside the cgroup against {pg}
    Then the session reached PostgreSQL through the agent
    And the agent metric pgproxy_client_connections_total rose by 1
    And the agent metric pgproxy_bpf_connect4_redirects_total rose by 1
    And the agent metric pgproxy_bpf_lookups_answered_total rose by 1

  Scenario: psql outside the cgroup connects directly
    When psql runs outside the cgroup against {pg}
    Then the session reached PostgreSQL directly from the client
    And the agent metrics did not change

  Scenario: pgx inside the cgroup goes through the agent and sees the address it dialled
    When pgx runs inside the cgroup against {pg}
    Then the session reached PostgreSQL through the agent
    And the server saw a client port other than pgx's own
    And pgx saw {pg} as its peer address
    And the agent metric pgproxy_client_connections_total rose by 1
    And the agent metric pgproxy_bpf_connect4_redirects_total rose by 1
    And the agent metric pgproxy_bpf_getpeername_answered_total rose by at least 1

  Scenario: pgx outside the cgroup connects directly
    When pgx runs outside the cgroup against {pg}
    Then the session reached PostgreSQL directly from the client
    And the server saw pgx's own client port
    And pgx saw {pg} as its peer address
    And the agent metrics did not change

  Scenario: pgbench inside the cgroup goes through the agent
    When pgbench -i runs inside the cgroup against {pg}
    And pgbench -S runs for 3 seconds with 2 clients inside the cgroup against {pg}
    Then the pgbench sessions reached PostgreSQL through the agent
    And the agent metric pgproxy_client_connections_total rose by at least 3
    And the agent metric pgproxy_bpf_connect4_redirects_total rose by at least 3

  Scenario: pgbench outside the cgroup connects directly
    When pgbench -i runs outside the cgroup against {pg}
    And pgbench -S runs for 3 seconds with 2 clients outside the cgroup against {pg}
    Then the pgbench sessions reached PostgreSQL directly from the client
    And the agent metrics did not change
