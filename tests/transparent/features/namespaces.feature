Feature: Clients in other network namespaces
  A DaemonSet agent serves pods whose loopback is not the node's: the redirect address is
  configurable (AGENT_REDIRECT_ADDRS) and the agent listens where pods can reach it. Traffic
  that arrives from another host is taken with INTERCEPT_MODE=tproxy on the interfaces in
  TPROXY_INTERFACES (tcx ingress + bpf_sk_assign to an IP_TRANSPARENT listener).

  Scenario: a pod stand-in in its own network namespace and cgroup is redirected to the node
    Given a pod network namespace joined to the host by a veth
    And a PostgreSQL listening on {hostveth} as {db}
    And a child cgroup
    And the agent runs for the cgroup with:
      | INTERCEPT_TARGETS    | {db}                   |
      | AGENT_LISTEN_ADDR    | {hostveth}:{agentport} |
      | AGENT_REDIRECT_ADDRS | {hostveth}:{agentport} |
    When psql runs in the pod namespace inside the cgroup against {db}
    Then the session reached PostgreSQL through the agent
    And PostgreSQL saw the session come from {hostveth}
    When pgx runs in the pod namespace inside the cgroup against {db}
    Then the session reached PostgreSQL through the agent
    And pgx saw {db} as its peer address
    And the agent metric pgproxy_client_connections_total rose by 2
    When psql runs in the pod namespace outside the cgroup against {db}
    Then the session reached PostgreSQL directly from the client
    And PostgreSQL saw the session come from {podveth}

  Scenario: TPROXY: traffic from another host's namespace is taken on the node's interface
    Given a client namespace and a node namespace joined by a veth, the node joined to the host by another veth
    And a PostgreSQL listening on {hostlink} as {db}
    And the agent runs in the node namespace with:
      | INTERCEPT_MODE    | tproxy              |
      | INTERCEPT_TARGETS | {db}                |
      | TPROXY_INTERFACES | {nodein}            |
      | AGENT_LISTEN_ADDR | 0.0.0.0:{agentport} |
    Then "bpftool prog show name pgproxy_tproxy" prints "sched_cls"
    When psql runs in the client namespace outside the cgroup against {db}
    Then the session reached PostgreSQL through the agent
    And PostgreSQL saw the session come from {nodeaddr}
    When pgx runs in the client namespace outside the cgroup against {db}
    Then the session reached PostgreSQL through the agent
    And pgx saw {db} as its peer address
    And the agent metric pgproxy_client_connections_total rose by 2
    And the agent metric pgproxy_bpf_tproxy_assigned_total rose by at least 2
    And "ip netns exec {nodens} ip rule show" prints "fwmark 0x1/0x1 lookup 100"
    When the agent gets SIGTERM
    Then the agent exited with code 0
    And "ip netns exec {nodens} ip rule show" does not print "lookup 100"
    And psql in the client namespace cannot reach {db}

  Scenario: TPROXY with iptables rules instead of tcx (the fallback for kernels without tcx)
    Given a client namespace and a node namespace joined by a veth, the node joined to the host by another veth
    And a PostgreSQL listening on {hostlink} as {db}
    And the agent runs in the node namespace with:
      | INTERCEPT_MODE    | tproxy              |
      | TPROXY_METHOD     | iptables            |
      | INTERCEPT_TARGETS | {db}                |
      | TPROXY_INTERFACES | {nodein}            |
      | AGENT_LISTEN_ADDR | 0.0.0.0:{agentport} |
    Then "ip netns exec {nodens} iptables -t mangle -S PGPROXY_TPROXY" prints "-j TPROXY"
    When psql runs in the client namespace outside the cgroup against {db}
    Then the session reached PostgreSQL through the agent
    And PostgreSQL saw the session come from {nodeaddr}
    And the agent metric pgproxy_bpf_tproxy_assigned_total rose by 0
    When the agent gets SIGTERM
    Then the agent exited with code 0
    And "ip netns exec {nodens} iptables -t mangle -S" does not print "PGPROXY_TPROXY"
    And psql in the client namespace cannot reach {db}
