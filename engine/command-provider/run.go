package main

import (
	"bytes"
	"context"

	"fmt"

	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Environment variables through which the previous stdout/stderr reach update and
// delete commands (upstream: provider/pkg/provider/util/util.go).
const (
	envPreviousStdout = "PULUMI_COMMAND_STDOUT"
	envPreviousStderr = "PULUMI_COMMAND_STDERR"
)

// maxLogLine bounds one logged line; longer lines are logged in pieces.
const maxLogLine = 64 * 1024

// cancelGrace is how long output pipes may stay open after a cancelled command's
// process group was killed (a process that left the group may still hold them).
const cancelGrace = time.Second

var defaultInterpreter = []string{"/bin/sh", "-c"}

// runSpec is one execution of a command.
type runSpec struct {
	Command string
	Args    baseArgs
	// Previous outputs, exported as PULUMI_COMMAND_STDOUT/STDERR when non-empty and
	// addPreviousOutputInEnv is not false.
	PrevStdout, PrevStderr string
	// Log receives each output line selected by `logging`. May be nil.
	Log func(line string)
	// Redact masks secrets in log lines and error messages.
	Redact *redactor
}

type runResult struct {
	Stdout, Stderr string
}

// lineLogger splits a stream into lines and hands each to log.
type lineLogger struct {
	log     func(string)
	pending []byte
}

func (l *lineLogger) write(p []byte) {
	l.pending = append(l.pending, p...)
	for {
		i := bytes.IndexByte(l.pending, '\n')
		if i < 0 {
			break
		}
		l.emit(l.pending[:i])
		l.pending = l.pending[i+1:]
	}
	for len(l.pending) >= maxLogLine {
		l.emit(l.pending[:maxLogLine])
		l.pending = l.pending[maxLogLine:]
	}
	if len(l.pending) == 0 {
		l.pending = nil
	}
}

func (l *lineLogger) flush() {
	if len(l.pending) > 0 {
		l.emit(l.pending)
		l.pending = nil
	}
}

func (l *lineLogger) emit(line []byte) {
	// Like bufio.ScanLines (which upstream uses): drop a trailing carriage return.
	l.log(string(bytes.TrimSuffix(line, []byte{'\r'})))
}

// runCommand runs spec.Command with the interpreter, in the directory, with the
// environment and stdin the inputs ask for, following upstream's `run` in
// provider/pkg/provider/local/commandOutputs.go. The process runs in its own process
// group, which is killed when ctx is cancelled.
func runCommand(ctx context.Context, spec runSpec) (runResult, error) {
	args := append([]string{}, defaultInterpreter...)
	if len(spec.Args.Interpreter) > 0 {
		args = append([]string{}, spec.Args.Interpreter...)
	}
	args = append(args, spec.Command)

	fail := func(err error, combined string) error {
		return fmt.Errorf("%w: running %q:\n%s", err,
			spec.Redact.apply(spec.Command), spec.Redact.apply(combined))
	}

	if err := ctx.Err(); err != nil {
		return runResult{}, fail(err, "")
	}

	cmd := exec.Command(args[0], args[1:]...) //nolint:gosec // running user commands is the point
	if spec.Args.Dir != nil {
		cmd.Dir = *spec.Args.Dir
		// Go reports a missing directory as "fork/exec <interpreter>: no such file or
		// directory"; say what is actually missing.
		if cmd.Dir != "" {
			if fi, err := os.Stat(cmd.Dir); err != nil {
				return runResult{}, fail(fmt.Errorf("dir: %w", err), "")
			} else if !fi.IsDir() {
				return runResult{}, fail(fmt.Errorf("dir: %s is not a directory", cmd.Dir), "")
			}
		}
	} else {
		wd, err := os.Getwd()
		if err != nil {
			return runResult{}, err
		}
		cmd.Dir = wd
	}

	cmd.Env = os.Environ()
	envKeys := make([]string, 0, len(spec.Args.Environment))
	for k := range spec.Args.Environment {
		envKeys = append(envKeys, k)
	}
	sort.Strings(envKeys)
	for _, k := range envKeys {
		cmd.Env = append(cmd.Env, k+"="+spec.Args.Environment[k])
	}
	if spec.Args.addPreviousOutput() {
		if spec.PrevStdout != "" {
			cmd.Env = append(cmd.Env, envPreviousStdout+"="+spec.PrevStdout)
		}
		if spec.PrevStderr != "" {
			cmd.Env = append(cmd.Env, envPreviousStderr+"="+spec.PrevStderr)
		}
	}
	if spec.Args.Stdin != nil && len(*spec.Args.Stdin) > 0 {
		cmd.Stdin = strings.NewReader(*spec.Args.Stdin)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	// The child writes straight into OS pipes that we drain ourselves, so that after a
	// cancellation we can stop waiting for output held open by stray processes.
	outR, outW, err := os.Pipe()
	if err != nil {
		return runResult{}, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		_ = outR.Close()
		_ = outW.Close()
		return runResult{}, err
	}
	cmd.Stdout = outW
	cmd.Stderr = errW

	var (
		stdout, stderr bytes.Buffer
		combinedMu     sync.Mutex
		combined       bytes.Buffer // only for error messages, as upstream
		logMu          sync.Mutex
	)
	logLine := func(line string) {
		if spec.Log == nil {
			return
		}
		logMu.Lock()
		defer logMu.Unlock()
		spec.Log(spec.Redact.apply(line))
	}
	drain := func(r *os.File, own *bytes.Buffer, log bool, done chan<- struct{}) {
		defer close(done)
		var ll *lineLogger
		if log {
			ll = &lineLogger{log: logLine}
		}
		buf := make([]byte, 32*1024)
		for {
			n, rerr := r.Read(buf)
			if n > 0 {
				own.Write(buf[:n])
				combinedMu.Lock()
				combined.Write(buf[:n])
				combinedMu.Unlock()
				if ll != nil {
					ll.write(buf[:n])
				}
			}
			if rerr != nil {
				break
			}
		}
		if ll != nil {
			ll.flush()
		}
	}

	if err := cmd.Start(); err != nil {
		for _, f := range []*os.File{outR, outW, errR, errW} {
			_ = f.Close()
		}
		return runResult{}, fail(err, "")
	}
	// The child has its copies; ours must go so the readers see EOF when it exits.
	_ = outW.Close()
	_ = errW.Close()

	outDone := make(chan struct{})
	errDone := make(chan struct{})
	go drain(outR, &stdout, spec.Args.logStdout(), outDone)
	go drain(errR, &stderr, spec.Args.logStderr(), errDone)

	killGroup := func() {
		if cmd.Process != nil {
			// Negative pid: the whole process group the command leads.
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}

	waitDone := make(chan error, 1)
	go func() { waitDone <- cmd.Wait() }()

	var waitErr error
	cancelled := false
	select {
	case waitErr = <-waitDone:
	case <-ctx.Done():
		cancelled = true
		killGroup()
		waitErr = <-waitDone
	}

	// Wait for the output to be drained. Like upstream, a successful command's output
	// is read until every writer has closed it; after a cancellation, only briefly.
	readersDone := make(chan struct{})
	go func() { <-outDone; <-errDone; close(readersDone) }()
	if !cancelled {
		select {
		case <-readersDone:
		case <-ctx.Done():
			cancelled = true
			killGroup()
		}
	}
	if cancelled {
		select {
		case <-readersDone:
		case <-time.After(cancelGrace):
			_ = outR.Close()
			_ = errR.Close()
			<-readersDone
		}
	}
	_ = outR.Close()
	_ = errR.Close()

	combinedMu.Lock()
	combinedText := combined.String()
	combinedMu.Unlock()

	if cancelled {
		cause := ctx.Err()
		if cause == nil {
			cause = context.Canceled
		}
		if waitErr != nil {
			return runResult{}, fail(fmt.Errorf("%w (%v)", cause, waitErr), combinedText)
		}
		return runResult{}, fail(cause, combinedText)
	}
	if waitErr != nil {
		return runResult{}, fail(waitErr, combinedText)
	}

	return runResult{
		Stdout: strings.TrimSuffix(stdout.String(), "\n"),
		Stderr: strings.TrimSuffix(stderr.String(), "\n"),
	}, nil
}
