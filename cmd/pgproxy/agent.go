package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	"github.com/pgproxy/pgproxy/agent"
	"github.com/pgproxy/pgproxy/userspace/config"
	"github.com/pgproxy/pgproxy/userspace/proxy"
	"github.com/pgproxy/pgproxy/userspace/telemetry"
)

// agentDefaultBackend stands in for PG_BACKEND_URL in transparent mode when
// it is not set: the host is replaced by each connection's original
// destination; TLS toward the database is used when the server offers it.
const agentDefaultBackend = "postgres://original-destination/?sslmode=prefer"

// newInterceptor builds transparent mode's interceptor from the INTERCEPT_*,
// AGENT_* and BPF_* variables.
func newInterceptor(cfg *config.Config) (*agent.Interceptor, error) {
	get := cfg.Getenv
	targets, err := agent.ParseTargets(get("INTERCEPT_TARGETS"))
	if err != nil {
		return nil, err
	}
	ic := &agent.Interceptor{
		Mode:       agent.Mode(strings.ToLower(strings.TrimSpace(get("INTERCEPT_MODE")))),
		Targets:    targets,
		CgroupPath: strings.TrimSpace(get("INTERCEPT_CGROUP")),
		ListenAddr: strings.TrimSpace(get("AGENT_LISTEN_ADDR")),
		PinPath:    strings.TrimSpace(get("BPF_PIN_PATH")),
	}
	if ic.Accelerate, err = envBool(get, "ACCELERATE_LOCAL"); err != nil {
		return nil, err
	}
	if ic.PinLinks, err = envBool(get, "BPF_FAIL_CLOSED"); err != nil {
		return nil, err
	}
	if ic.PinLinks && ic.PinPath == "" {
		return nil, errors.New("BPF_FAIL_CLOSED=true needs BPF_PIN_PATH (the pinned links are what outlives the agent)")
	}
	for _, a := range splitList(get("AGENT_REDIRECT_ADDRS")) {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			return nil, fmt.Errorf("AGENT_REDIRECT_ADDRS: %q is not address:port", a)
		}
		ic.RedirectAddrs = append(ic.RedirectAddrs, ap)
	}
	ic.TPROXYInterfaces = splitList(get("TPROXY_INTERFACES"))
	ic.TPROXYMethod = strings.ToLower(strings.TrimSpace(get("TPROXY_METHOD")))
	return ic, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func envBool(get func(string) string, name string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(get(name))) {
	case "", "false", "0", "no", "off":
		return false, nil
	case "true", "1", "yes", "on":
		return true, nil
	}
	return false, fmt.Errorf("%s=%q must be true or false", name, get(name))
}

// runAgent is transparent mode: the eBPF interceptor redirects connections
// to intercepted databases into the same engine as explicit mode, and each
// session dials the connection's original destination.
func runAgent(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	ic, err := newInterceptor(cfg)
	if err != nil {
		return err
	}
	metrics := telemetry.NewMetrics()
	opts := proxy.Options{
		DialControl: ic.DialControl,
		Resolve: func(c net.Conn) (string, error) {
			dst, err := ic.OriginalDestination(c)
			if err != nil {
				return "", err
			}
			return dst.String(), nil
		},
	}
	var ready func() error
	if cfg.OIDCAuth {
		token, v, err := tokenAuth(ctx, cfg, log)
		if err != nil {
			return err
		}
		opts.Authenticator = token
		ready = func() error {
			if !v.Ready() {
				return errors.New("OIDC issuer keys not loaded yet")
			}
			return nil
		}
	}
	srv, err := proxy.New(cfg, metrics, log, opts)
	if err != nil {
		return err
	}
	// The programs are attached last inside Start, once the listener exists.
	if err := ic.Start(ctx); err != nil {
		return err
	}
	defer ic.Close()
	metrics.Registry.MustRegister(telemetry.NewMapCollector("pgproxy_bpf_",
		"eBPF interception counter, summed over CPUs.", ic.Counters))
	health := telemetry.NewHealth(metrics, func(context.Context) error {
		if ready != nil {
			return ready()
		}
		return nil
	})
	log.Info("transparent mode: intercepting", "targets", cfg.Getenv("INTERCEPT_TARGETS"),
		"mode", string(ic.Mode), "cgroup", ic.CgroupPath, "accelerate", ic.Accelerate)
	// On shutdown detach first, so new connects go straight to the
	// database, then drain the sessions already here.
	return serve(ctx, cfg, log, srv, health, ic.Listener(), func() { ic.Close() })
}
