package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
)

// failer stands in for *testing.T where Istio's in-process discovery server wants a test.Failer.
//
// Fatal/FailNow behave as in the testing package: they record the message and end the calling goroutine
// (runtime.Goexit), so the case goroutine's deferred code reports the error instead of the process dying.
// Cleanup functions run, last registered first, when the case is over (runCleanups).
type failer struct {
	mu       sync.Mutex
	errs     []string
	cleanups []func()
	tmpDir   string
}

func (f *failer) record(msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, msg)
}

func (f *failer) errors() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.errs...)
}

func (f *failer) Fail()             { f.record("failed") }
func (f *failer) FailNow()          { f.record("failed"); runtime.Goexit() }
func (f *failer) Fatal(args ...any) { f.record(fmt.Sprint(args...)); runtime.Goexit() }
func (f *failer) Fatalf(format string, args ...any) {
	f.record(fmt.Sprintf(format, args...))
	runtime.Goexit()
}
func (f *failer) Skip(args ...any)    { f.record("skipped: " + fmt.Sprint(args...)); runtime.Goexit() }
func (f *failer) Log(...any)          {}
func (f *failer) Logf(string, ...any) {}
func (f *failer) Helper()             {}

func (f *failer) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

func (f *failer) TempDir() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tmpDir == "" {
		dir, err := os.MkdirTemp("", "istio-oracle-")
		if err != nil {
			panic(err)
		}
		f.tmpDir = dir
	}
	return f.tmpDir
}

// runCleanups runs the registered cleanups in reverse order; a panicking cleanup does not stop the others.
func (f *failer) runCleanups() {
	f.mu.Lock()
	fns := f.cleanups
	f.cleanups = nil
	dir := f.tmpDir
	f.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		func() {
			defer func() { _ = recover() }()
			fns[i]()
		}()
	}
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
}
