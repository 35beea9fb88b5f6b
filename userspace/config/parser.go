package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

type parser struct {
	getenv func(string) string
	agent  bool // transparent mode: agentVars' defaults apply
	errs   []error
}

// fail records an error for the variable name. msg follows the name: a
// value shown as ="…" or a list item after ":" joins it directly
// (LISTEN_ADDR="5432" is not …), anything else after a space
// (PG_BACKEND_URL is required …).
func (p *parser) fail(name, msg string) {
	sep := " "
	if strings.HasPrefix(msg, "=") || strings.HasPrefix(msg, ":") {
		sep = ""
	}
	p.errs = append(p.errs, errors.New(name+sep+msg))
}

func (p *parser) str(name string) string {
	if v := strings.TrimSpace(p.getenv(name)); v != "" {
		return v
	}
	return defaultOf(name, p.agent)
}

// defaultOf returns the default of the variable name: in transparent mode
// agentVars' where it has one, else Vars'.
func defaultOf(name string, agent bool) string {
	if agent {
		for _, v := range agentVars {
			if v.Name == name {
				return v.Default
			}
		}
	}
	for _, v := range Vars {
		if v.Name == name {
			return v.Default
		}
	}
	return ""
}

func (p *parser) addr(name string) string {
	v := p.str(name)
	if _, port, err := net.SplitHostPort(v); err != nil {
		p.fail(name, fmt.Sprintf("=%q is not host:port (for example :5432 or 127.0.0.1:5432)", v))
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.fail(name, fmt.Sprintf("=%q has an invalid port", v))
	}
	return v
}

func (p *parser) bool(name string) bool {
	v := strings.ToLower(p.str(name))
	switch v {
	case "true", "1", "yes", "on":
		return true
	case "false", "0", "no", "off", "":
		return false
	}
	p.fail(name, fmt.Sprintf("=%q must be true or false", v))
	return false
}

func (p *parser) int(name string, lo, hi int) int {
	v := p.str(name)
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.fail(name, fmt.Sprintf("=%q must be a whole number from %d to %d", v, lo, hi))
	}
	return n
}

func (p *parser) dur(name string, min time.Duration) time.Duration {
	v := p.str(name)
	d, err := time.ParseDuration(v)
	if err != nil || d < min {
		p.fail(name, fmt.Sprintf("=%q must be a duration such as 10s or 500ms (at least %v)", v, min))
	}
	return d
}

func (p *parser) addrPorts(name string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range SplitList(p.str(name)) {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			p.fail(name, fmt.Sprintf(": %q is not address:port ([v6]:port for IPv6)", a))
			continue
		}
		out = append(out, ap)
	}
	return out
}

// SplitList splits a comma-separated list, trimming blanks and dropping
// empty and repeated entries.
func SplitList(s string) []string {
	var out []string
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" || seen[part] {
			continue
		}
		seen[part] = true
		out = append(out, part)
	}
	return out
}

func (p *parser) oneOf(name string, allowed ...string) string {
	v := strings.ToLower(p.str(name))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	p.fail(name, fmt.Sprintf("=%q must be one of %s", v, strings.Join(allowed, ", ")))
	return allowed[0]
}
