package bpf

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Options selects the optional parts loaded by Load.
type Options struct {
	// Accelerate loads the sk_msg program and attaches it to the SOCKHASH,
	// so the bytes of the local hop (client socket to agent socket) skip the
	// TCP stack. The agent must then relay with read/write, not splice.
	Accelerate bool
	// TPROXY loads the tcx ingress program used by AttachTPROXY.
	TPROXY bool
	// PinLinks makes Pin also pin the attachment links, so the programs stay
	// attached if the process dies (fail-closed). Without it a dead agent
	// leaves no redirect behind (fail-open).
	PinLinks bool
}

// Objects holds the loaded programs and maps and every attachment made with
// them. Its methods are safe for concurrent use. Close detaches everything.
type Objects struct {
	opts Options
	coll *ebpf.Collection

	mu       sync.Mutex
	settings pgproxyConfig
	links    []namedLink
	skMsgOn  bool
	pinDir   string
	pinned   []pinnable
	closed   bool

	lookupsAnswered atomic.Uint64
	lookupMisses    atomic.Uint64
}

// namedLink is one attachment, named for pinning and for errors.
type namedLink struct {
	name string
	link link.Link
}

// Program and map names in the object file.
const (
	progConnect4     = "pgproxy_connect4"
	progConnect6     = "pgproxy_connect6"
	progSockops      = "pgproxy_sockops"
	progGetsockopt   = "pgproxy_getsockopt"
	progGetpeername4 = "pgproxy_getpeername4"
	progGetpeername6 = "pgproxy_getpeername6"
	progSkMsg        = "pgproxy_sk_msg"
	progTPROXY       = "pgproxy_tproxy"

	mapSettings     = "settings"
	mapCounters     = "counters"
	mapTargetsExact = "targets_exact"
	mapTargetsCIDR  = "targets_cidr"
	mapOrigByCookie = "orig_by_cookie"
	mapOrigByClient = "orig_by_client"
	mapLocalSocks   = "local_socks"
	mapTPROXYLsn    = "tproxy_lsn"
)

// Load checks privileges and kernel support, then loads the programs and maps
// into the kernel without attaching them. Errors name what is missing; they
// wrap ErrPermission or ErrUnsupported where that is the cause.
func Load(opts Options) (*Objects, error) {
	if err := preflight(opts); err != nil {
		return nil, err
	}
	spec, err := loadPgproxy()
	if err != nil {
		return nil, fmt.Errorf("bpf: read embedded object: %w", err)
	}
	if !opts.Accelerate {
		delete(spec.Programs, progSkMsg)
	}
	if !opts.TPROXY {
		delete(spec.Programs, progTPROXY)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return nil, explainLoadError(err)
	}
	o := &Objects{opts: opts, coll: coll}
	if err := o.writeSettings(func(*pgproxyConfig) {}); err != nil {
		coll.Close()
		return nil, err
	}
	if opts.Accelerate {
		if err := o.attachSkMsg(); err != nil {
			coll.Close()
			return nil, err
		}
	}
	return o, nil
}

// explainLoadError adds a hint to a failed collection load.
func explainLoadError(err error) error {
	var ve *ebpf.VerifierError
	switch {
	case errors.As(err, &ve):
		return fmt.Errorf("bpf: kernel verifier rejected a program (old kernel, or a program bug): %w", err)
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("%w: bpf: load programs: %w", ErrUnsupported, err)
	default:
		return fmt.Errorf("bpf: load programs: %w", err)
	}
}

func (o *Objects) prog(name string) *ebpf.Program { return o.coll.Programs[name] }
func (o *Objects) m(name string) *ebpf.Map        { return o.coll.Maps[name] }

// Accelerated reports whether the sk_msg local-hop shortcut is loaded. When
// it is, bytes from redirected clients arrive on the agent's accepted sockets
// through the socket's ingress queue, which splice(2) does not see: relay
// them with Read/Write.
func (o *Objects) Accelerated() bool { return o.opts.Accelerate }

// Close detaches every program (removing pins first, so pinned links detach
// too) and releases the maps. It is safe to call more than once.
func (o *Objects) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	o.closed = true
	var errs []error
	errs = append(errs, o.unpinLocked())
	for i := len(o.links) - 1; i >= 0; i-- {
		if err := o.links[i].link.Close(); err != nil {
			errs = append(errs, fmt.Errorf("bpf: detach %s: %w", o.links[i].name, err))
		}
	}
	o.links = nil
	errs = append(errs, o.detachSkMsgLocked())
	o.coll.Close()
	return errors.Join(errs...)
}
