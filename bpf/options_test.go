//go:build linux

package bpf_test

import "github.com/pgproxy/pgproxy/bpf"

var bpfOptionsPlain = bpf.Options{}
