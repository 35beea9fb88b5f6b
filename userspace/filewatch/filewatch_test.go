package filewatch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func start(t *testing.T, path string) <-chan struct{} {
	t.Helper()
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	ch := Watch(path, stop, nil)
	quiet(t, ch, "right after the watch started")
	return ch
}

func signalled(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(3 * time.Second):
		t.Fatalf("no signal within 3 s after %s", what)
	}
	// One burst, one signal.
	quiet(t, ch, "the signal of "+what)
}

func quiet(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("a signal %s, with nothing changed", what)
	case <-time.After(4 * Quiet):
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWritesAndReplacements(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "masking.yaml")
	write(t, path, "a")
	ch := start(t, path)

	// A log written beside it is no concern.
	for i := range 5 {
		write(t, filepath.Join(dir, "pgproxy.log"), strings.Repeat("x", i))
	}
	quiet(t, ch, "after writes to another file in the folder")

	write(t, path, "b")
	signalled(t, ch, "a write in place")

	// An editor's save: a new file renamed over the old one.
	write(t, path+".tmp", "c")
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	signalled(t, ch, "a rename over the file")

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	signalled(t, ch, "its removal")
	write(t, path, "d")
	signalled(t, ch, "its creation after start")
}

// A Kubernetes ConfigMap volume: the file is a link through ..data, and an
// update swaps ..data to a new folder.
func TestConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []string{"..v1", "..v2"} {
		if err := os.Mkdir(filepath.Join(dir, v), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, v, "masking.yaml"), v)
	}
	if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "masking.yaml")
	if err := os.Symlink(filepath.Join("..data", "masking.yaml"), path); err != nil {
		t.Fatal(err)
	}
	ch := start(t, path)

	if err := os.Symlink("..v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	signalled(t, ch, "the swap of ..data")
	if got, _ := os.ReadFile(path); string(got) != "..v2" {
		t.Fatalf("the file reads %q after the swap", got)
	}

	// The folder the link now resolves to is watched too.
	write(t, filepath.Join(dir, "..v2", "masking.yaml"), "edited")
	signalled(t, ch, "a write where the link points")
}

// A file that is a link into another folder: writes there are seen.
func TestLinkElsewhere(t *testing.T) {
	real := filepath.Join(t.TempDir(), "overrides.yaml")
	write(t, real, "a")
	path := filepath.Join(t.TempDir(), "overrides.yaml")
	if err := os.Symlink(real, path); err != nil {
		t.Fatal(err)
	}
	ch := start(t, path)
	write(t, real, "b")
	signalled(t, ch, "a write to the link's target")
}
