Feature: What the agent intercepts: IPv6 targets, CIDR targets, and nothing else
  INTERCEPT_TARGETS is a comma list of address:port and CIDR:port, IPv4 and IPv6. Only
  connects to a listed destination are redirected; the same address at another port is not.

  Background:
    Given a child cgroup

  Scenario: an IPv6 target is redirected to an IPv6 listener
    Given the agent runs for the cgroup with:
      | INTERCEPT_TARGETS | {pg6}               |
      | AGENT_LISTEN_ADDR | [::1]:{agentport}   |
    When psql runs inside the cgroup against {pg6}
    Then the session reached PostgreSQL through the agent
    And PostgreSQL saw the session come from ::1
    And the agent metric pgproxy_bpf_connect6_redirects_total rose by 1
    And the agent metric pgproxy_bpf_connect4_redirects_total rose by 0
    When pgx runs inside the cgroup against {pg6}
    Then the session reached PostgreSQL through the agent
    And the server saw a client port other than pgx's own
    And pgx saw {pg6} as its peer address

  Scenario: a CIDR target covers every address inside it
    Given the agent runs for the cgroup with targets "127.0.0.0/24:{pgport}"
    When psql runs inside the cgroup against {pg}
    Then the session reached PostgreSQL through the agent
    When pgx runs inside the cgroup against {pg3}
    Then the session reached PostgreSQL through the agent
    And pgx saw {pg3} as its peer address
    And the agent metric pgproxy_bpf_connect4_redirects_total rose by 2
    And the agent metric pgproxy_client_connections_total rose by 2

  Scenario: the same address at a port that is not a target is untouched
    Given a PostgreSQL listening on 127.0.0.2 as {other}
    And the agent runs for the cgroup with targets "127.0.0.0/24:{pgport}"
    When psql runs inside the cgroup against {other}
    Then the session reached PostgreSQL directly from the client
    When pgx runs inside the cgroup against {other}
    Then the session reached PostgreSQL directly from the client
    And the server saw pgx's own client port
    And the agent metrics did not change
