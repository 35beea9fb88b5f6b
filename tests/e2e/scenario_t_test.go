package e2e

import (
	"context"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/cucumber/godog"
)

// scenarioT is the testing.TB that step definitions hand to the harness. It is the scenario's
// own subtest (so cleanups, temporary folders and skips belong to the scenario), except that
// fatal failures inside a step go through godog, which stops the scenario and reports the
// failed step instead of unwinding godog's runner with runtime.Goexit.
type scenarioT struct {
	*testing.T
	dog        godog.TestingT
	cleaningUp atomic.Bool
}

// newScenarioT returns the scenarioT of the scenario running in ctx (from a Before hook).
func newScenarioT(ctx context.Context) (*scenarioT, error) {
	dog := godog.T(ctx)
	if dog == nil {
		return nil, fmt.Errorf("no godog TestingT in the scenario context (TestingT option missing?)")
	}
	t, err := subtestOf(dog)
	if err != nil {
		return nil, err
	}
	return &scenarioT{T: t, dog: dog}, nil
}

// subtestOf reads the *testing.T that godog keeps for the scenario's subtest. godog (v0.16.0,
// pinned in go.mod) does not export it; without it the harness could only tie cleanups to the
// whole feature.
func subtestOf(dog godog.TestingT) (*testing.T, error) {
	v := reflect.ValueOf(dog)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("godog TestingT is a %T, not a struct pointer", dog)
	}
	f := v.Elem().FieldByName("t")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*testing.T]() {
		return nil, fmt.Errorf("godog TestingT %T has no field t *testing.T (godog version changed?)", dog)
	}
	t := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface().(*testing.T)
	if t == nil {
		return nil, fmt.Errorf("godog scenario runs without a subtest")
	}
	return t, nil
}

// inStep reports whether failures should go through godog (a step is running) rather than to
// the subtest directly (cleanups, after the last step).
func (s *scenarioT) inStep() bool { return !s.cleaningUp.Load() }

// Cleanup registers f on the scenario's subtest.
func (s *scenarioT) Cleanup(f func()) {
	s.T.Cleanup(func() {
		s.cleaningUp.Store(true)
		f()
	})
}

func (s *scenarioT) Error(args ...any) {
	if s.inStep() {
		s.dog.Error(args...)
		return
	}
	s.T.Error(args...)
}

func (s *scenarioT) Errorf(format string, args ...any) {
	if s.inStep() {
		s.dog.Errorf(format, args...)
		return
	}
	s.T.Errorf(format, args...)
}

func (s *scenarioT) Fail() {
	if s.inStep() {
		s.dog.Fail()
		return
	}
	s.T.Fail()
}

func (s *scenarioT) FailNow() {
	if s.inStep() {
		s.dog.FailNow()
		return
	}
	s.T.FailNow()
}

func (s *scenarioT) Fatal(args ...any) {
	if s.inStep() {
		// godog's Fatal logs without recording the message as the step's error.
		s.dog.Error(args...)
		s.dog.FailNow()
		return
	}
	s.T.Fatal(args...)
}

func (s *scenarioT) Fatalf(format string, args ...any) {
	if s.inStep() {
		s.dog.Errorf(format, args...)
		s.dog.FailNow()
		return
	}
	s.T.Fatalf(format, args...)
}
