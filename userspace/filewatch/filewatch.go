// Package filewatch tells a configuration watcher when a file may have
// changed, from the kernel's file events (inotify): an edit is seen within
// Quiet, not at the next tick of a timer, and an idle proxy does not stat
// its files every second.
//
// The directory holding the file is watched, not the file itself, so that
// an editor's write-and-rename, a Kubernetes ConfigMap's swap of its
// ..data link and a file created after start all show. When the path is a
// link, the directory it resolves to is watched too. Events about other
// files there are ignored. A burst of events gives one signal once the file
// has been quiet for a moment; the receiver decides whether the file really
// changed (its time and size).
// File systems that send no events for changes made elsewhere (NFS) are
// covered by a signal every Backstop as well.
package filewatch

import (
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Quiet is how long a watched directory must be still after an event
// before the change is signalled: a file being written is not read half
// way.
const Quiet = 50 * time.Millisecond

// PollInterval is how often the file is looked at when the kernel's file
// events are not available (inotify limits).
const PollInterval = time.Second

// Backstop is how often the file is looked at even with file events, for
// changes no event reports (a network file system changed from another
// host).
const Backstop = 10 * time.Second

// Watch signals on the returned channel (capacity one: signals coalesce)
// whenever the file at path may have changed, and every Backstop, until
// stop is closed. It falls back to a signal every PollInterval, logged
// once, when file events cannot be had.
func Watch(path string, stop <-chan struct{}, log *slog.Logger) <-chan struct{} {
	out := make(chan struct{}, 1)
	w, err := fsnotify.NewWatcher()
	if err == nil {
		err = w.Add(filepath.Dir(path))
		if err != nil {
			w.Close()
		}
	}
	if err != nil {
		if log != nil {
			log.Warn("file events unavailable; the file is checked every second instead", "path", path, "err", err)
		}
		go poll(out, stop, PollInterval)
		return out
	}
	go events(w, path, out, stop, log)
	return out
}

func notify(out chan struct{}) {
	select {
	case out <- struct{}{}:
	default:
	}
}

func poll(out chan struct{}, stop <-chan struct{}, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			notify(out)
		}
	}
}

func events(w *fsnotify.Watcher, path string, out chan struct{}, stop <-chan struct{}, log *slog.Logger) {
	defer w.Close()
	dir := filepath.Dir(path)
	target := ""
	// names: the file's, and what its link resolves to (other files in
	// the folders, a log written beside it, say, are no concern).
	names := map[string]bool{filepath.Base(path): true}
	follow := func() { // watch where the link points now, too
		real, err := filepath.EvalSymlinks(path)
		if err != nil {
			return
		}
		names[filepath.Base(real)] = true
		if d := filepath.Dir(real); d != dir && d != target {
			if target != "" {
				_ = w.Remove(target)
			}
			if w.Add(d) == nil {
				target = d
			}
		}
	}
	follow()
	quiet := time.NewTimer(Quiet)
	quiet.Stop()
	backstop := time.NewTicker(Backstop)
	defer backstop.Stop()
	for {
		select {
		case <-stop:
			quiet.Stop()
			return
		case <-backstop.C:
			follow()
			notify(out)
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if concerns(ev.Name, names) {
				quiet.Reset(Quiet)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			// An overflowed queue lost events: say the file may have changed.
			if log != nil {
				log.Warn("file events", "path", path, "err", err)
			}
			quiet.Reset(Quiet)
		case <-quiet.C:
			follow()
			notify(out)
		}
	}
}

// concerns reports whether an event about name may change the file: one of
// the names it goes by, or a name starting with ".." (a ConfigMap's links
// and folders).
func concerns(name string, names map[string]bool) bool {
	base := filepath.Base(name)
	return names[base] || strings.HasPrefix(base, "..")
}
