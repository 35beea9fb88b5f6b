package bpf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// pinnable is a map, program or link that can be pinned to bpffs.
type pinnable interface {
	Pin(string) error
	Unpin() error
}

const linkPinPrefix = "link_"

// Pin pins every map and program in dir (on a bpffs mount, created if
// missing) so `bpftool map dump pinned DIR/NAME` and `bpftool prog show
// pinned DIR/NAME` work. With Options.PinLinks the attachments are pinned too
// (now and by later Attach calls), as DIR/link_PROGRAM. Call RemoveStalePins
// first when a previous agent may have left pins. Close removes the pins.
func (o *Objects) Pin(dir string) error {
	if err := checkBPFFS(dir); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return errClosed
	}
	if o.pinDir != "" {
		return fmt.Errorf("bpf: already pinned in %s", o.pinDir)
	}
	o.pinDir = dir
	for name, m := range o.coll.Maps {
		if err := o.pinLocked(name, m); err != nil {
			return err
		}
	}
	for name, p := range o.coll.Programs {
		if err := o.pinLocked(name, p); err != nil {
			return err
		}
	}
	return o.pinNewLinksLocked(o.links)
}

func (o *Objects) pinLocked(name string, p pinnable) error {
	path := filepath.Join(o.pinDir, name)
	if err := p.Pin(path); err != nil {
		return fmt.Errorf("bpf: pin %s: %w", path, err)
	}
	o.pinned = append(o.pinned, p)
	return nil
}

// pinNewLinksLocked pins links when pinning is on and links are to be pinned.
func (o *Objects) pinNewLinksLocked(links []namedLink) error {
	if o.pinDir == "" || !o.opts.PinLinks {
		return nil
	}
	for _, l := range links {
		if err := o.pinLocked(linkPinPrefix+l.name, l.link); err != nil {
			return err
		}
	}
	return nil
}

// unpinLocked removes every pin made by Pin.
func (o *Objects) unpinLocked() error {
	var errs []error
	for _, p := range o.pinned {
		if err := p.Unpin(); err != nil {
			errs = append(errs, fmt.Errorf("bpf: unpin: %w", err))
		}
	}
	o.pinned = nil
	if o.pinDir != "" {
		os.Remove(o.pinDir) // only if empty
		o.pinDir = ""
	}
	return errors.Join(errs...)
}

// RemoveStalePins removes pins a previous process left in dir: the maps and
// programs of this package and every link_* pin. Each pinned link is
// detached (BPF_LINK_DETACH) before its pin is removed, so the stale
// redirect stops at once even if some process still holds the link. Other
// files are left alone. A missing dir is not an error.
func RemoveStalePins(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bpf: read pin dir: %w", err)
	}
	own := ownPinNames()
	var errs []error
	for _, e := range entries {
		isLink := strings.HasPrefix(e.Name(), linkPinPrefix)
		if !own[e.Name()] && !isLink {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if isLink {
			errs = append(errs, detachPinnedLink(path))
		}
		if err := os.Remove(path); err != nil {
			errs = append(errs, fmt.Errorf("bpf: remove stale pin: %w", err))
		}
	}
	return errors.Join(errs...)
}

// detachPinnedLink detaches the link pinned at path.
func detachPinnedLink(path string) error {
	l, err := link.LoadPinnedLink(path, nil)
	if err != nil {
		return fmt.Errorf("bpf: open stale link %s: %w", path, err)
	}
	defer l.Close()
	if err := l.Detach(); err != nil && !errors.Is(err, ebpf.ErrNotSupported) {
		return fmt.Errorf("bpf: detach stale link %s: %w", path, err)
	}
	return nil
}

// ownPinNames lists the map and program names of the object file.
func ownPinNames() map[string]bool {
	names := map[string]bool{}
	spec, err := loadPgproxy()
	if err != nil {
		return names
	}
	for n := range spec.Maps {
		names[n] = true
	}
	for n := range spec.Programs {
		names[n] = true
	}
	return names
}

// checkBPFFS creates dir if needed and checks that it is on a bpffs mount.
func checkBPFFS(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("bpf: pin dir: %w", err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("bpf: pin dir: %w", err)
	}
	if st.Type != unix.BPF_FS_MAGIC {
		return fmt.Errorf("bpf: pin dir %s is not on bpffs (mount -t bpf bpf /sys/fs/bpf)", dir)
	}
	return nil
}
