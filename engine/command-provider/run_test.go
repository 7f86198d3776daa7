package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

func TestRunEnvDirStdin(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("FROM_PROVIDER_ENV", "inherited")
	res, err := runCommand(context.Background(), runSpec{
		Command: `pwd; echo "$GREETING $FROM_PROVIDER_ENV"; cat; echo oops >&2`,
		Args: baseArgs{
			Dir:         &dir,
			Environment: map[string]string{"GREETING": "hello"},
			Stdin:       ptr("from stdin\n"),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := dir + "\nhello inherited\nfrom stdin"
	if res.Stdout != want {
		t.Fatalf("stdout = %q, want %q", res.Stdout, want)
	}
	if res.Stderr != "oops" {
		t.Fatalf("stderr = %q, want %q", res.Stderr, "oops")
	}
}

func TestRunDefaultsToProviderWorkingDirectory(t *testing.T) {
	wd, _ := os.Getwd()
	res, err := runCommand(context.Background(), runSpec{Command: "pwd"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != wd {
		t.Fatalf("stdout = %q, want %q", res.Stdout, wd)
	}
}

func TestRunTrimsOneTrailingNewline(t *testing.T) {
	res, err := runCommand(context.Background(), runSpec{Command: `printf 'a\n\n'; printf 'b\n' >&2`})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "a\n" || res.Stderr != "b" {
		t.Fatalf("stdout %q stderr %q", res.Stdout, res.Stderr)
	}
}

func TestRunInterpreter(t *testing.T) {
	res, err := runCommand(context.Background(), runSpec{
		Command: "x y",
		Args:    baseArgs{Interpreter: []string{"/usr/bin/env", "echo", "args:"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "args: x y" {
		t.Fatalf("stdout = %q", res.Stdout)
	}
}

func TestRunUserEnvironmentOverridesProviderEnvironment(t *testing.T) {
	t.Setenv("SHADOWED", "provider")
	res, err := runCommand(context.Background(), runSpec{
		Command: `echo "$SHADOWED"`,
		Args:    baseArgs{Environment: map[string]string{"SHADOWED": "user"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "user" {
		t.Fatalf("stdout = %q", res.Stdout)
	}
}

func TestRunPreviousOutputInEnv(t *testing.T) {
	cmd := `echo "out=${PULUMI_COMMAND_STDOUT-unset} err=${PULUMI_COMMAND_STDERR-unset}"`
	res, err := runCommand(context.Background(), runSpec{Command: cmd, PrevStdout: "o1", PrevStderr: "e1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "out=o1 err=e1" {
		t.Fatalf("stdout = %q", res.Stdout)
	}
	// Empty previous outputs are not exported (upstream).
	res, err = runCommand(context.Background(), runSpec{Command: cmd, PrevStdout: "o1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "out=o1 err=unset" {
		t.Fatalf("stdout = %q", res.Stdout)
	}
	res, err = runCommand(context.Background(), runSpec{
		Command: cmd, PrevStdout: "o1", PrevStderr: "e1",
		Args: baseArgs{AddPreviousOutputInEnv: ptr(false)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "out=unset err=unset" {
		t.Fatalf("stdout = %q", res.Stdout)
	}
}

func TestRunFailureIncludesStatusAndOutput(t *testing.T) {
	_, err := runCommand(context.Background(), runSpec{Command: `echo partial; echo broken >&2; exit 3`})
	if err == nil {
		t.Fatal("want an error")
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("want an exit error with status 3, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"exit status 3", `running "echo partial; echo broken >&2; exit 3"`, "partial", "broken"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}

func TestRunMissingDirFails(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	_, err := runCommand(context.Background(), runSpec{Command: "true", Args: baseArgs{Dir: &missing}})
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("want an error naming the directory, got %v", err)
	}
}

func TestRunLogging(t *testing.T) {
	cases := []struct {
		logging *string
		want    []string
	}{
		{nil, []string{"err-line", "out-line"}},
		{ptr(logStdoutAndStderr), []string{"err-line", "out-line"}},
		{ptr(logStdout), []string{"out-line"}},
		{ptr(logStderr), []string{"err-line"}},
		{ptr(logNone), nil},
	}
	for _, c := range cases {
		name := "default"
		if c.logging != nil {
			name = *c.logging
		}
		t.Run(name, func(t *testing.T) {
			var got []string
			_, err := runCommand(context.Background(), runSpec{
				Command: `echo out-line; echo err-line >&2`,
				Args:    baseArgs{Logging: c.logging},
				Log:     func(l string) { got = append(got, l) },
			})
			if err != nil {
				t.Fatal(err)
			}
			// stdout and stderr are separate streams: compare as sets.
			if len(got) == 2 && got[0] > got[1] {
				got[0], got[1] = got[1], got[0]
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("logged %q, want %q", got, c.want)
			}
		})
	}
}

func TestRunLogsLinesWithoutFinalNewlineAndCR(t *testing.T) {
	var got []string
	_, err := runCommand(context.Background(), runSpec{
		Command: `printf 'one\r\ntwo'`,
		Log:     func(l string) { got = append(got, l) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []string{"one", "two"}) {
		t.Fatalf("logged %q", got)
	}
}

func TestRunRedactsSecretsInLogsAndErrors(t *testing.T) {
	var got []string
	_, err := runCommand(context.Background(), runSpec{
		Command: `echo "password is $PGPASSWORD"; exit 1`,
		Args:    baseArgs{Environment: map[string]string{"PGPASSWORD": "hunter22"}},
		Log:     func(l string) { got = append(got, l) },
		Redact:  newRedactor([]string{"hunter22"}),
	})
	if err == nil {
		t.Fatal("want an error")
	}
	if strings.Contains(err.Error(), "hunter22") || !strings.Contains(err.Error(), "password is [secret]") {
		t.Fatalf("error not redacted: %q", err)
	}
	if strings.Join(got, "\n") != "password is [secret]" {
		t.Fatalf("log not redacted: %q", got)
	}
}

func TestRunCancelKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	ctx, cancel := context.WithCancel(context.Background())
	started := time.Now()
	go func() {
		// Wait until the grandchild is up, then cancel.
		for i := 0; i < 200; i++ {
			if b, err := os.ReadFile(pidFile); err == nil && len(b) > 0 && b[len(b)-1] == '\n' {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	// The grandchild keeps stdout open; without a group kill Wait would block ~30s.
	_, err := runCommand(ctx, runSpec{Command: `sleep 30 & echo $! > ` + pidFile + `; wait`})
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("want a cancellation error, got %v", err)
	}
	if d := time.Since(started); d > 10*time.Second {
		t.Fatalf("cancellation took %v", d)
	}
	b, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 {
		t.Fatalf("no grandchild pid recorded")
	}
	// The grandchild must be gone (allow the kernel a moment to reap it).
	deadline := time.Now().Add(3 * time.Second)
	for {
		if err := syscall.Kill(pid, 0); err != nil {
			break
		}
		// A zombie still answers kill(0); check its state.
		if st, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat")); err == nil &&
			strings.Contains(string(st), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d still alive after cancellation", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunAlreadyCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	marker := filepath.Join(t.TempDir(), "ran")
	_, err := runCommand(ctx, runSpec{Command: "touch " + marker})
	if err == nil {
		t.Fatal("want an error")
	}
	if _, statErr := os.Stat(marker); statErr == nil {
		t.Fatal("command ran although the context was cancelled")
	}
}
