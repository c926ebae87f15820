package testenv

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// Child is a copy of the test binary run as a crash-test child: its
// TestMain sees the environment it was given, does its work and writes
// lines to stdout, the first being "ready".
type Child struct {
	cmd    *exec.Cmd
	Out    *bufio.Reader // the child's stdout, after "ready"
	stderr strings.Builder
}

// StartChild starts the test binary again, running no test, with env
// added to the environment, and waits for its "ready" line.
func StartChild(t testing.TB, env ...string) *Child {
	t.Helper()
	c := &Child{cmd: exec.Command(os.Args[0], "-test.run=^$")}
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stderr = &c.stderr
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	c.Out = bufio.NewReader(out)
	if line, _ := c.Out.ReadString('\n'); line != "ready\n" {
		c.cmd.Wait()
		t.Fatalf("child did not start: %q, stderr: %s", line, c.stderr.String())
	}
	return c
}

// Kill sends the child SIGKILL and waits for it. It reports whether the
// signal ended it (false: it had already exited cleanly); a child that
// failed on its own fails the test.
func (c *Child) Kill(t testing.TB) bool {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill: %v", err)
	}
	go io.Copy(io.Discard, c.Out)
	err := c.cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return false
	case errors.As(err, &ee) && ee.ProcessState.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL:
		return true
	}
	t.Fatalf("child failed: %v: %s", err, c.stderr.String())
	return false
}
