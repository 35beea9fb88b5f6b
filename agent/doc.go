// Package agent is pgproxy's transparent mode on a node: it parses what to
// intercept, loads and attaches the eBPF programs of package bpf, opens the
// listener redirected clients arrive on, and tells the engine where each
// accepted connection was originally going.
//
// The engine stays relay-agnostic: it accepts from Interceptor.Listener,
// asks Interceptor.OriginalDestination for the backend to dial, and dials it
// with Interceptor.DialControl so its own sockets carry the agent mark and
// are never redirected back to itself.
package agent
