package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func create(t *testing.T, p *provider, props resource.PropertyMap, preview bool) (string, resource.PropertyMap, error) {
	t.Helper()
	resp, err := p.Create(context.Background(), &pulumirpc.CreateRequest{
		Urn: testURN, Properties: mustMarshal(t, props), Preview: preview,
	})
	if err != nil {
		return "", nil, err
	}
	return resp.GetId(), mustUnmarshal(t, resp.GetProperties()), nil
}

func update(t *testing.T, p *provider, olds, news resource.PropertyMap, preview bool) (resource.PropertyMap, error) {
	t.Helper()
	resp, err := p.Update(context.Background(), &pulumirpc.UpdateRequest{
		Urn: testURN, Id: "migrate-1234", Olds: mustMarshal(t, olds), News: mustMarshal(t, news), Preview: preview,
	})
	if err != nil {
		return nil, err
	}
	return mustUnmarshal(t, resp.GetProperties()), nil
}

func TestPluginInfoAndSchema(t *testing.T) {
	p := newTestProvider(nil)
	info, err := p.GetPluginInfo(context.Background(), &emptypb.Empty{})
	if err != nil || info.GetVersion() != "1.2.1" {
		t.Fatalf("GetPluginInfo = %v, %v", info, err)
	}
	s, err := p.GetSchema(context.Background(), &pulumirpc.GetSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Name      string                     `json:"name"`
		Version   string                     `json:"version"`
		Resources map[string]json.RawMessage `json:"resources"`
		Functions map[string]json.RawMessage `json:"functions"`
	}
	if err := json.Unmarshal([]byte(s.GetSchema()), &spec); err != nil {
		t.Fatal(err)
	}
	if spec.Name != "command" || spec.Version != "1.2.1" || spec.Resources[tokenCommand] == nil ||
		spec.Functions[tokenRun] == nil {
		t.Fatalf("unexpected schema header: %+v", spec)
	}
	cfg, err := p.Configure(context.Background(), &pulumirpc.ConfigureRequest{})
	if err != nil || !cfg.GetAcceptSecrets() || !cfg.GetSupportsPreview() {
		t.Fatalf("Configure = %v, %v", cfg, err)
	}
}

func TestCreatePreviewRunsNothing(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	p := newTestProvider(nil)
	in := resource.PropertyMap{"create": str("touch " + marker), "dir": unknown()}
	_, out, err := create(t, p, in, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("preview ran the create command")
	}
	if !out["stdout"].IsComputed() || !out["stderr"].IsComputed() {
		t.Fatalf("stdout/stderr should be unknown in preview: %v", out)
	}
	if !out["dir"].IsComputed() || out["create"].StringValue() != "touch "+marker {
		t.Fatalf("inputs should come back as given: %v", out)
	}
}

func TestCreateRunsAndReturnsInputsAndOutputs(t *testing.T) {
	p := newTestProvider(nil)
	dir := t.TempDir()
	in := resource.PropertyMap{
		"create":      str(`echo "$A in $(pwd)"; echo warn >&2`),
		"dir":         str(dir),
		"environment": obj("A", "a"),
		"triggers":    strList("t"),
	}
	id, out, err := create(t, p, in, false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id, "migrate") || len(id) != len("migrate")+8 {
		t.Fatalf("id = %q", id)
	}
	for k, v := range in {
		if !out[k].DeepEquals(v) {
			t.Errorf("output %s = %v, want input %v", k, out[k], v)
		}
	}
	if so, sec := plainString(t, out["stdout"]); so != "a in "+dir || sec {
		t.Errorf("stdout = %q (secret %v)", so, sec)
	}
	if se, _ := plainString(t, out["stderr"]); se != "warn" {
		t.Errorf("stderr = %q", se)
	}
	for _, k := range []resource.PropertyKey{"interpreter", "logging", "addPreviousOutputInEnv", "assets", "archive"} {
		if _, ok := out[k]; ok {
			t.Errorf("unexpected output %s", k)
		}
	}
}

func TestCreateWithoutCreateCommand(t *testing.T) {
	_, out, err := create(t, newTestProvider(nil), resource.PropertyMap{"delete": str("echo bye")}, false)
	if err != nil {
		t.Fatal(err)
	}
	if so, _ := plainString(t, out["stdout"]); so != "" {
		t.Fatalf("stdout = %q", so)
	}
}

func TestCreateEmptyAssetListsGiveEmptyCollections(t *testing.T) {
	_, out, err := create(t, newTestProvider(nil),
		resource.PropertyMap{"create": str("true"), "assetPaths": strList(), "archivePaths": strList()}, false)
	if err != nil {
		t.Fatal(err)
	}
	if !out["assets"].IsObject() || len(out["assets"].ObjectValue()) != 0 || !out["archive"].IsArchive() {
		t.Fatalf("want empty assets and archive, got %v / %v", out["assets"], out["archive"])
	}
}

func TestCreateFailureIsAnErrorWithOutput(t *testing.T) {
	_, _, err := create(t, newTestProvider(nil),
		resource.PropertyMap{"create": str(`echo "column missing" >&2; exit 2`)}, false)
	if err == nil {
		t.Fatal("want an error")
	}
	if !strings.Contains(err.Error(), "exit status 2") || !strings.Contains(err.Error(), "column missing") {
		t.Fatalf("error = %q", err)
	}
}

func TestSecretsPropagate(t *testing.T) {
	cases := []struct {
		name string
		in   resource.PropertyMap
	}{
		{"secret environment value", resource.PropertyMap{
			"create": str(`echo "$PGPASSWORD"`), "environment": obj("PGPASSWORD", secret(str("s3cr3t-pw")), "PGHOST", "h"),
		}},
		{"secret environment map", resource.PropertyMap{
			"create": str(`echo "$PGPASSWORD"`), "environment": secret(obj("PGPASSWORD", "s3cr3t-pw")),
		}},
		{"secret stdin", resource.PropertyMap{"create": str("cat"), "stdin": secret(str("s3cr3t-pw"))}},
		// The output of a secret command is not a known secret value, so it is logged.
		{"secret command", resource.PropertyMap{"create": secret(str("echo s3cr3t-pw"))}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := &logRecorder{}
			p := newTestProvider(rec)
			_, out, err := create(t, p, c.in, false)
			if err != nil {
				t.Fatal(err)
			}
			so, sec := plainString(t, out["stdout"])
			if so != "s3cr3t-pw" || !sec {
				t.Fatalf("stdout = %q secret=%v; want the value, marked secret", so, sec)
			}
			if _, sec := plainString(t, out["stderr"]); !sec {
				t.Fatalf("stderr not secret")
			}
			for k, v := range c.in {
				if !out[k].DeepEquals(v) {
					t.Errorf("input %s lost its secretness: %v", k, out[k])
				}
			}
			for _, l := range rec.get() {
				if c.name != "secret command" && strings.Contains(l, "s3cr3t-pw") {
					t.Fatalf("secret logged: %q", l)
				}
			}
			// Preview marks the unknown outputs secret too.
			_, prev, err := create(t, p, c.in, true)
			if err != nil {
				t.Fatal(err)
			}
			if !prev["stdout"].IsSecret() || !prev["stdout"].SecretValue().Element.IsComputed() {
				t.Fatalf("preview stdout = %v, want secret unknown", prev["stdout"])
			}
		})
	}
	t.Run("plain inputs give plain outputs", func(t *testing.T) {
		_, out, err := create(t, newTestProvider(nil), resource.PropertyMap{
			"create": str("echo hi"), "delete": secret(str("echo bye")),
		}, false)
		if err != nil {
			t.Fatal(err)
		}
		if out["stdout"].IsSecret() {
			t.Fatalf("stdout secret without a secret reaching the command")
		}
		if !out["delete"].IsSecret() {
			t.Fatalf("secret delete lost its secretness")
		}
	})
}

func TestCreateFailureDoesNotLogOrReturnSecrets(t *testing.T) {
	rec := &logRecorder{}
	_, _, err := create(t, newTestProvider(rec), resource.PropertyMap{
		"create":      str(`echo "connecting with $PGPASSWORD"; exit 1`),
		"environment": obj("PGPASSWORD", secret(str("s3cr3t-pw"))),
	}, false)
	if err == nil {
		t.Fatal("want an error")
	}
	if strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Fatalf("secret in error: %q", err)
	}
	if got := rec.get(); len(got) != 1 || got[0] != "connecting with [secret]" {
		t.Fatalf("logged %q", got)
	}
}

func TestUpdate(t *testing.T) {
	p := newTestProvider(nil)
	olds := resource.PropertyMap{
		"create": str("echo created"), "update": str(`echo "updated after $PULUMI_COMMAND_STDOUT"`),
		"stdout": str("v1"), "stderr": str(""),
	}
	news := resource.PropertyMap{
		"create": str("echo created"), "update": str(`echo "updated after $PULUMI_COMMAND_STDOUT"`),
		"environment": obj("X", "1"),
	}
	out, err := update(t, p, olds, news, false)
	if err != nil {
		t.Fatal(err)
	}
	if so, _ := plainString(t, out["stdout"]); so != "updated after v1" {
		t.Fatalf("stdout = %q", so)
	}
	if !out["environment"].DeepEquals(news["environment"]) {
		t.Fatalf("new inputs not in state: %v", out)
	}

	t.Run("falls back to create", func(t *testing.T) {
		n := resource.PropertyMap{"create": str(`echo "re-created after $PULUMI_COMMAND_STDOUT"`)}
		out, err := update(t, p, olds, n, false)
		if err != nil {
			t.Fatal(err)
		}
		if so, _ := plainString(t, out["stdout"]); so != "re-created after v1" {
			t.Fatalf("stdout = %q", so)
		}
	})
	t.Run("no command keeps old outputs", func(t *testing.T) {
		n := resource.PropertyMap{"delete": str("echo bye")}
		out, err := update(t, p, olds, n, false)
		if err != nil {
			t.Fatal(err)
		}
		if so, _ := plainString(t, out["stdout"]); so != "v1" {
			t.Fatalf("stdout = %q", so)
		}
	})
	t.Run("preview runs nothing", func(t *testing.T) {
		marker := filepath.Join(t.TempDir(), "ran")
		n := news.Copy()
		n["update"] = str("touch " + marker)
		out, err := update(t, p, olds, n, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatal("preview ran the update command")
		}
		if !out["stdout"].IsComputed() {
			t.Fatalf("changed inputs should make stdout unknown in preview: %v", out["stdout"])
		}
	})
	t.Run("failure", func(t *testing.T) {
		n := resource.PropertyMap{"create": str("true"), "update": str("echo nope; exit 4")}
		_, err := update(t, p, olds, n, false)
		if err == nil || !strings.Contains(err.Error(), "exit status 4") || !strings.Contains(err.Error(), "nope") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("secret previous output makes new outputs secret", func(t *testing.T) {
		o := olds.Copy()
		o["stdout"] = secret(str("old-secret-out"))
		n := resource.PropertyMap{"update": str(`echo "$PULUMI_COMMAND_STDOUT" | tr a-z A-Z`)}
		out, err := update(t, p, o, n, false)
		if err != nil {
			t.Fatal(err)
		}
		if so, sec := plainString(t, out["stdout"]); so != "OLD-SECRET-OUT" || !sec {
			t.Fatalf("stdout = %q secret=%v", so, sec)
		}
	})
}

func TestDelete(t *testing.T) {
	p := newTestProvider(nil)
	dir := t.TempDir()
	marker := filepath.Join(dir, "deleted")
	state := resource.PropertyMap{
		"create": str("echo created"),
		"delete": str(`echo "$PULUMI_COMMAND_STDOUT/$GREETING" > deleted`),
		"dir":    str(dir), "environment": obj("GREETING", secret(str("hello"))),
		"stdout": str("created"), "stderr": str(""),
	}
	if _, err := p.Delete(context.Background(), &pulumirpc.DeleteRequest{
		Urn: testURN, Id: "x", Properties: mustMarshal(t, state),
	}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(marker)
	if err != nil || string(b) != "created/hello\n" {
		t.Fatalf("delete wrote %q, %v", b, err)
	}

	state["delete"] = str("echo cannot downgrade >&2; exit 1")
	_, err = p.Delete(context.Background(), &pulumirpc.DeleteRequest{
		Urn: testURN, Id: "x", Properties: mustMarshal(t, state),
	})
	if err == nil || !strings.Contains(err.Error(), "cannot downgrade") {
		t.Fatalf("err = %v", err)
	}

	// No delete command: nothing to do.
	delete(state, "delete")
	if _, err := p.Delete(context.Background(), &pulumirpc.DeleteRequest{
		Urn: testURN, Id: "x", Properties: mustMarshal(t, state),
	}); err != nil {
		t.Fatal(err)
	}
}

func TestReadReturnsStateAsIs(t *testing.T) {
	p := newTestProvider(nil)
	state := mustMarshal(t, resource.PropertyMap{"create": str("x"), "stdout": secret(str("y"))})
	inputs := mustMarshal(t, resource.PropertyMap{"create": str("x")})
	resp, err := p.Read(context.Background(), &pulumirpc.ReadRequest{Urn: testURN, Id: "id1", Properties: state, Inputs: inputs})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetId() != "id1" || !mustUnmarshal(t, resp.GetProperties()).DeepEquals(mustUnmarshal(t, state)) ||
		!mustUnmarshal(t, resp.GetInputs()).DeepEquals(mustUnmarshal(t, inputs)) {
		t.Fatalf("Read changed the state: %v", resp)
	}
}

func TestInvokeRun(t *testing.T) {
	p := newTestProvider(nil)
	args := resource.PropertyMap{
		"command":     str(`echo "$V"; echo e >&2`),
		"environment": obj("V", secret(str("probe-secret"))),
	}
	resp, err := p.Invoke(context.Background(), &pulumirpc.InvokeRequest{Tok: tokenRun, Args: mustMarshal(t, args)})
	if err != nil {
		t.Fatal(err)
	}
	out := mustUnmarshal(t, resp.GetReturn())
	if so, sec := plainString(t, out["stdout"]); so != "probe-secret" || !sec {
		t.Fatalf("stdout = %q secret=%v", so, sec)
	}
	if !out["command"].DeepEquals(args["command"]) || !out["environment"].DeepEquals(args["environment"]) {
		t.Fatalf("inputs not returned: %v", out)
	}

	// A non-zero exit is an error.
	_, err = p.Invoke(context.Background(), &pulumirpc.InvokeRequest{Tok: tokenRun,
		Args: mustMarshal(t, resource.PropertyMap{"command": str("echo probe failed; exit 9")})})
	if err == nil || !strings.Contains(err.Error(), "exit status 9") || !strings.Contains(err.Error(), "probe failed") {
		t.Fatalf("err = %v", err)
	}

	// Missing command is a check failure.
	resp, err = p.Invoke(context.Background(), &pulumirpc.InvokeRequest{Tok: tokenRun,
		Args: mustMarshal(t, resource.PropertyMap{"dir": str("/")})})
	if err != nil || len(resp.GetFailures()) != 1 || resp.GetFailures()[0].GetProperty() != "command" {
		t.Fatalf("resp = %v, err = %v", resp, err)
	}

	// Unknown functions are rejected.
	if _, err := p.Invoke(context.Background(), &pulumirpc.InvokeRequest{Tok: "command:remote:run"}); err == nil {
		t.Fatal("want an error for an unknown function")
	}
}

func TestCancelKillsRunningCommands(t *testing.T) {
	p := newTestProvider(nil)
	done := make(chan error, 1)
	go func() {
		_, err := p.Create(context.Background(), &pulumirpc.CreateRequest{
			Urn: testURN, Properties: mustMarshal(t, resource.PropertyMap{"create": str("sleep 30")}),
		})
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	if _, err := p.Cancel(context.Background(), &emptypb.Empty{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "canceled") {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Cancel did not stop the command")
	}
	// Later operations are cancelled too (as with pulumi-go-provider's cancel middleware).
	_, _, err := create(t, p, resource.PropertyMap{"create": str("true")}, false)
	if err == nil {
		t.Fatal("want operations after Cancel to fail")
	}
}

func TestCreateTimeout(t *testing.T) {
	p := newTestProvider(nil)
	start := time.Now()
	_, err := p.Create(context.Background(), &pulumirpc.CreateRequest{
		Urn: testURN, Timeout: 0.3, Properties: mustMarshal(t, resource.PropertyMap{"create": str("sleep 30")}),
	})
	if err == nil || !strings.Contains(err.Error(), "deadline exceeded") || time.Since(start) > 10*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
}

// fakeEngine records Log calls the provider makes over gRPC.
type fakeEngine struct {
	pulumirpc.UnimplementedEngineServer
	mu   sync.Mutex
	logs []*pulumirpc.LogRequest
}

func (e *fakeEngine) Log(_ context.Context, req *pulumirpc.LogRequest) (*emptypb.Empty, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.logs = append(e.logs, req)
	return &emptypb.Empty{}, nil
}

func TestOutputIsLoggedToTheEngineAsInfoStatus(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	eng := &fakeEngine{}
	pulumirpc.RegisterEngineServer(srv, eng)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	host, err := dialEngine(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = host.conn.Close() }()
	p := newProvider(host)
	if _, _, err := create(t, p, resource.PropertyMap{"create": str("echo line1; echo line2")}, false); err != nil {
		t.Fatal(err)
	}
	eng.mu.Lock()
	defer eng.mu.Unlock()
	if len(eng.logs) != 2 {
		t.Fatalf("logs = %v", eng.logs)
	}
	for i, want := range []string{"line1", "line2"} {
		l := eng.logs[i]
		if l.GetMessage() != want || l.GetUrn() != testURN || l.GetSeverity() != pulumirpc.LogSeverity_INFO ||
			!l.GetEphemeral() {
			t.Errorf("log %d = %v", i, l)
		}
	}
}
