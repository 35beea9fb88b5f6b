package main

import (
	"context"
	"log/slog"
	"net"

	"github.com/pgproxy/pgproxy/agent"
	"github.com/pgproxy/pgproxy/bpf"
	"github.com/pgproxy/pgproxy/userspace/config"
	"github.com/pgproxy/pgproxy/userspace/proxy"
	"github.com/pgproxy/pgproxy/userspace/telemetry"
)

// newInterceptor builds transparent mode's interceptor from the INTERCEPT_*,
// AGENT_* and BPF_* variables (validated by package config).
func newInterceptor(cfg *config.Config, log *slog.Logger) (*agent.Interceptor, error) {
	a := cfg.Agent
	targets, err := agent.ParseTargets(a.Targets)
	if err != nil {
		return nil, err
	}
	if a.AccelerateAuto {
		if err := bpf.AccelerationSupported(); err != nil {
			log.Info("ACCELERATE_LOCAL=auto: the sk_msg local-hop shortcut is off", "reason", err.Error())
			a.Accelerate = false
		}
	}
	return &agent.Interceptor{
		Mode:             agent.Mode(a.Mode),
		Targets:          targets,
		CgroupPath:       a.Cgroup,
		ListenAddr:       a.ListenAddr,
		RedirectAddrs:    a.RedirectAddrs,
		Accelerate:       a.Accelerate,
		PinPath:          a.PinPath,
		PinLinks:         a.FailClosed,
		TPROXYInterfaces: a.TPROXYInterfaces,
		TPROXYMethod:     a.TPROXYMethod,
	}, nil
}

// runAgent is transparent mode: the eBPF interceptor redirects connections
// to intercepted databases into the same engine as explicit mode, and each
// session dials the connection's original destination.
func runAgent(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	ic, err := newInterceptor(cfg, log)
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
	issuerReady, err := tokenAuth(ctx, cfg, log, &opts)
	if err != nil {
		return err
	}
	if opts.Tokens, err = iamTokens(ctx, cfg, log, metrics); err != nil {
		return err
	}
	noteIAM(cfg, log)
	g, err := statementPolicies(ctx, cfg, log, metrics, &opts)
	if err != nil {
		return err
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
	// Ready means intercepting (and, with token auth, the issuer's keys
	// loaded); the databases are not probed: see Interceptor.Ready.
	health := telemetry.NewHealth(metrics, func(context.Context) error {
		if err := ic.Ready(); err != nil {
			return err
		}
		if issuerReady != nil {
			return issuerReady()
		}
		return nil
	})
	log.Info("transparent mode: intercepting", "targets", cfg.Agent.Targets,
		"mode", string(ic.Mode), "cgroup", ic.CgroupPath, "accelerate", ic.Accelerate)
	// On shutdown detach first, so new connects go straight to the
	// database, then drain the sessions already here.
	return serve(ctx, cfg, log, srv, health, ic.Listener(), func() { ic.Close() }, g)
}
