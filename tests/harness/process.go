package harness

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// dirPrefix names the per-process folder under os.TempDir; the PID follows it so that folders
// left by a crashed test binary can be recognised and removed by the next one.
const dirPrefix = "pgproxy-harness-"

var (
	procDirOnce sync.Once
	procDir     string
	procDirErr  error

	runMu     sync.Mutex
	inRun     bool
	atExitFns []func()
)

// processDir returns a folder that lives as long as the test binary. It is world-traversable
// (0711) so that the postgres OS user can reach the cluster folders created inside it.
func processDir() (string, error) {
	procDirOnce.Do(func() {
		sweepStaleDirs()
		procDir, procDirErr = os.MkdirTemp("", fmt.Sprintf("%s%d-", dirPrefix, os.Getpid()))
		if procDirErr == nil {
			procDirErr = os.Chmod(procDir, 0o711)
		}
	})
	return procDir, procDirErr
}

// sweepStaleDirs removes per-process folders whose owning process no longer exists.
func sweepStaleDirs() {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, m := range matches {
		rest := strings.TrimPrefix(filepath.Base(m), dirPrefix)
		pidStr, _, ok := strings.Cut(rest, "-")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
			slog.Debug("harness: removing stale folder", "path", m)
			_ = os.RemoveAll(m)
		}
	}
}

// atExit registers fn to run when Run returns. It reports false when Run is not in use, in
// which case the caller must not create process-wide resources that need stopping.
func atExit(fn func()) bool {
	runMu.Lock()
	defer runMu.Unlock()
	if !inRun {
		return false
	}
	atExitFns = append(atExitFns, fn)
	return true
}

// Run runs the tests of a package and then stops what the harness shared between them (the
// shared cluster, the proxy build folder). Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(harness.Run(m)) }
func Run(m *testing.M) int {
	runMu.Lock()
	inRun = true
	runMu.Unlock()
	code := m.Run()
	runMu.Lock()
	fns := atExitFns
	atExitFns, inRun = nil, false
	runMu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
	if procDir != "" {
		if err := os.RemoveAll(procDir); err != nil {
			slog.Warn("harness: cannot remove folder", "path", procDir, "err", err)
		}
	}
	return code
}
