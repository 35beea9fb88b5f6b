package harness

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
)

// Ports are drawn below the usual Linux ephemeral range (32768-60999) so that outgoing
// connections of other tests cannot take a port between the check and its use.
const (
	portLow  = 15000
	portHigh = 32000
)

// FreePort returns a TCP port on which host (an IP address, "" meaning 127.0.0.1) can listen
// right now.
func FreePort(host string) (int, error) {
	if host == "" {
		host = "127.0.0.1"
	}
	var lastErr error
	for range 100 {
		port := portLow + rand.IntN(portHigh-portLow)
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			lastErr = err
			continue
		}
		_ = l.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free port on %s: %w", host, lastErr)
}

// FreeAddr returns "host:port" with a port from FreePort.
func FreeAddr(host string) (string, error) {
	if host == "" {
		host = "127.0.0.1"
	}
	p, err := FreePort(host)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), nil
}
