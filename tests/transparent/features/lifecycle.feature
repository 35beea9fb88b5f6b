Feature: Agent lifecycle: loop avoidance, restarts, SIGTERM and pins
  The agent marks its own backend sockets (SO_MARK) so the connect hooks never send them back
  to itself, even when the agent runs inside the cgroup it intercepts. On SIGTERM it detaches
  every program before draining, so no connect is sent to a listener about to close; links are
  not pinned unless BPF_FAIL_CLOSED=true, so applications connect directly while no agent runs
  (fail-open).

  Background:
    Given a child cgroup

  Scenario: the agent's own backend connections are not redirected, also after a restart
    Given the agent runs inside the cgroup it intercepts, with targets "{pg}"
    When pgx runs inside the cgroup against {pg}
    Then the session reached PostgreSQL through the agent
    And the agent metric pgproxy_client_connections_total rose by 1
    And the agent metric pgproxy_bpf_connect4_redirects_total rose by 1
    And the agent metric pgproxy_bpf_connect_agent_skips_total rose by 1
    When the agent is restarted
    And psql runs inside the cgroup against {pg}
    Then the session reached PostgreSQL through the agent
    And the agent metric pgproxy_client_connections_total rose by 1
    And the agent metric pgproxy_bpf_connect4_redirects_total rose by 1
    And the agent metric pgproxy_bpf_connect_agent_skips_total rose by 1

  Scenario: clients keep connecting while the agent restarts
    Given the agent runs for the cgroup with targets "{pg}"
    When pgx connects in a loop inside the cgroup against {pg} for 8 seconds while the agent restarts after 2 seconds
    Then every connection before the restart went through the agent
    And every connection once the new agent was ready went through the agent
    And connections during the gap went directly or through an agent
    And no connection failed during the gap

  Scenario: SIGTERM detaches everything and removes the pins
    Given the agent runs for the cgroup with:
      | INTERCEPT_TARGETS | {pg}   |
      | BPF_PIN_PATH      | {pins} |
    Then "bpftool cgroup show {cgroup}" prints "connect4"
    And "bpftool cgroup show {cgroup}" prints "sock_ops"
    And "bpftool cgroup show {cgroup}" prints "getsockopt"
    And "bpftool cgroup show {cgroup}" prints "getpeername4"
    And "bpftool prog show pinned {pins}/pgproxy_connect4" prints "cgroup_sock_addr"
    And "bpftool map dump pinned {pins}/targets_exact" prints "255,255,127,0,0,2"
    When psql runs inside the cgroup against {pg}
    Then the session reached PostgreSQL through the agent
    And "bpftool map dump pinned {pins}/orig_by_client" prints "255,255,127,0,0,2"
    And "bpftool map dump pinned {pins}/counters" prints "values"
    And "bpftool prog show" prints "name pgproxy_connect4"
    When the agent gets SIGTERM
    Then the agent exited with code 0
    And "bpftool cgroup show {cgroup}" does not print "connect4"
    And "bpftool cgroup show {cgroup}" does not print "sock_ops"
    And the pin folder {pins} is gone
    When pgx runs inside the cgroup against {pg}
    Then the session reached PostgreSQL directly from the client
    And the server saw pgx's own client port
