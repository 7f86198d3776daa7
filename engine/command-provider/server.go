package main

import (
	"context"
	_ "embed"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// providerVersion is the version of the `command` package this binary stands in for.
const providerVersion = "1.2.1"

//go:embed schema.json
var schemaJSON string

// opTracker ties Cancel and per-operation timeouts to contexts, as
// pulumi-go-provider's cancel middleware does for upstream: Cancel cancels every
// operation in flight and every later one.
type opTracker struct {
	mu       sync.Mutex
	closed   bool
	next     int
	inflight map[int]context.CancelFunc
}

func newOpTracker() *opTracker { return &opTracker{inflight: map[int]context.CancelFunc{}} }

// start derives the context for one operation; timeout is in seconds (0: none).
func (t *opTracker) start(ctx context.Context, timeout float64) (context.Context, func()) {
	var cancel context.CancelFunc
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, time.Duration(timeout*float64(time.Second)))
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		cancel()
		return ctx, cancel
	}
	id := t.next
	t.next++
	t.inflight[id] = cancel
	return ctx, func() {
		t.mu.Lock()
		delete(t.inflight, id)
		t.mu.Unlock()
		cancel()
	}
}

func (t *opTracker) cancelAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for id, cancel := range t.inflight {
		cancel()
		delete(t.inflight, id)
	}
}

// engineHost is the engine connection used for logging.
type engineHost struct {
	conn   *grpc.ClientConn
	client pulumirpc.EngineClient
}

func dialEngine(addr string) (*engineHost, error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		rpcutil.GrpcChannelOptions(),
	)
	if err != nil {
		return nil, fmt.Errorf("could not connect to the engine at %s: %w", addr, err)
	}
	return &engineHost{conn: conn, client: pulumirpc.NewEngineClient(conn)}, nil
}

// provider is the gRPC ResourceProvider server.
type provider struct {
	pulumirpc.UnimplementedResourceProviderServer

	hostMu sync.RWMutex
	host   *engineHost

	ops               *opTracker
	supportsOldInputs atomic.Bool
	cmd               *commandOps
}

func newProvider(host *engineHost) *provider {
	p := &provider{host: host, ops: newOpTracker()}
	p.cmd = &commandOps{log: p.logStatus}
	return p
}

// logStatus sends one line of command output to the engine as an info-level status
// message for the resource (upstream: util.LogOutput -> Logger.InfoStatus ->
// host.LogStatus). Status messages show in the progress display's Info column.
func (p *provider) logStatus(ctx context.Context, urn string, line string) {
	p.hostMu.RLock()
	h := p.host
	p.hostMu.RUnlock()
	if h == nil {
		return
	}
	// Logging must outlive a cancelled operation long enough to report its output.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, _ = h.client.Log(lctx, &pulumirpc.LogRequest{
		Severity:  pulumirpc.LogSeverity_INFO,
		Message:   strings.ToValidUTF8(line, "\uFFFD"),
		Urn:       urn,
		Ephemeral: true,
	})
}

func unmarshal(s *structpb.Struct) (resource.PropertyMap, error) {
	if s == nil {
		return resource.PropertyMap{}, nil
	}
	return plugin.UnmarshalProperties(s, plugin.MarshalOptions{
		KeepUnknowns: true,
		KeepSecrets:  true,
		SkipNulls:    true,
	})
}

func marshal(m resource.PropertyMap) (*structpb.Struct, error) {
	return plugin.MarshalProperties(m, plugin.MarshalOptions{
		KeepUnknowns: true,
		KeepSecrets:  true,
		SkipNulls:    true,
	})
}

func resourceType(urn string) string {
	u, err := resource.ParseURN(urn)
	if err != nil {
		return ""
	}
	return string(u.Type())
}

func checkType(urn string) error {
	if t := resourceType(urn); t != tokenCommand {
		return status.Errorf(codes.InvalidArgument, "unknown resource type %q: this provider implements only %s",
			t, tokenCommand)
	}
	return nil
}

func rpcFailures(fs []checkFailure) []*pulumirpc.CheckFailure {
	out := make([]*pulumirpc.CheckFailure, 0, len(fs))
	for _, f := range fs {
		out = append(out, &pulumirpc.CheckFailure{Property: f.Property, Reason: f.Reason})
	}
	return out
}

// --- plugin lifecycle -------------------------------------------------------------

func (p *provider) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: providerVersion}, nil
}

func (p *provider) Handshake(_ context.Context, req *pulumirpc.ProviderHandshakeRequest,
) (*pulumirpc.ProviderHandshakeResponse, error) {
	if addr := req.GetEngineAddress(); addr != "" {
		p.hostMu.Lock()
		if p.host == nil {
			if h, err := dialEngine(addr); err == nil {
				p.host = h
			}
		}
		p.hostMu.Unlock()
	}
	return &pulumirpc.ProviderHandshakeResponse{
		AcceptSecrets:   true,
		AcceptResources: false,
		AcceptOutputs:   false,
	}, nil
}

func (p *provider) Attach(_ context.Context, req *pulumirpc.PluginAttach) (*emptypb.Empty, error) {
	h, err := dialEngine(req.GetAddress())
	if err != nil {
		return nil, err
	}
	p.hostMu.Lock()
	old := p.host
	p.host = h
	p.hostMu.Unlock()
	if old != nil {
		_ = old.conn.Close()
	}
	return &emptypb.Empty{}, nil
}

func (p *provider) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: schemaJSON}, nil
}

func (p *provider) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (p *provider) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (p *provider) Configure(_ context.Context, req *pulumirpc.ConfigureRequest,
) (*pulumirpc.ConfigureResponse, error) {
	p.supportsOldInputs.Store(req.GetSendsOldInputs() && req.GetSendsOldInputsToDelete())
	return &pulumirpc.ConfigureResponse{
		AcceptSecrets:   true,
		SupportsPreview: true,
		AcceptResources: false,
		AcceptOutputs:   false,
	}, nil
}

func (p *provider) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	p.ops.cancelAll()
	return &emptypb.Empty{}, nil
}

// --- command:local:Command ---------------------------------------------------------

func (p *provider) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	if err := checkType(req.GetUrn()); err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	failures := validateInputs(news, commandInputKinds, nil)
	inputs, err := marshal(filterInputs(news, commandInputKinds))
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: inputs, Failures: rpcFailures(failures)}, nil
}

func (p *provider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	if err := checkType(req.GetUrn()); err != nil {
		return nil, err
	}
	olds, err := unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	in := diffInput{State: olds, News: news, IgnoreChanges: req.GetIgnoreChanges()}
	if p.supportsOldInputs.Load() || req.GetOldInputs() != nil {
		if in.OldInputs, err = unmarshal(req.GetOldInputs()); err != nil {
			return nil, err
		}
	}
	return diffCommand(in), nil
}

func (p *provider) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	if err := checkType(req.GetUrn()); err != nil {
		return nil, err
	}
	ctx, done := p.ops.start(ctx, req.GetTimeout())
	defer done()
	props, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	id, out, err := p.cmd.create(ctx, resource.URN(req.GetUrn()), props, req.GetPreview())
	if err != nil {
		return nil, err
	}
	s, err := marshal(out)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: s}, nil
}

func (p *provider) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	if err := checkType(req.GetUrn()); err != nil {
		return nil, err
	}
	// Nothing to refresh: the state is what the last command produced.
	return &pulumirpc.ReadResponse{
		Id:         req.GetId(),
		Properties: req.GetProperties(),
		Inputs:     req.GetInputs(),
	}, nil
}

func (p *provider) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	if err := checkType(req.GetUrn()); err != nil {
		return nil, err
	}
	ctx, done := p.ops.start(ctx, req.GetTimeout())
	defer done()
	olds, err := unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	for _, ic := range req.GetIgnoreChanges() {
		if path, perr := resource.ParsePropertyPath(ic); perr == nil && len(path) > 0 {
			if v, ok := path.Get(resource.NewObjectProperty(olds)); ok {
				path.Set(resource.NewObjectProperty(news), v)
			}
		}
	}
	out, err := p.cmd.update(ctx, resource.URN(req.GetUrn()), olds, news, req.GetPreview())
	if err != nil {
		return nil, err
	}
	s, err := marshal(out)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: s}, nil
}

func (p *provider) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	if err := checkType(req.GetUrn()); err != nil {
		return nil, err
	}
	ctx, done := p.ops.start(ctx, req.GetTimeout())
	defer done()
	state, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	if err := p.cmd.delete(ctx, resource.URN(req.GetUrn()), state); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// --- command:local:run -------------------------------------------------------------

func (p *provider) Invoke(ctx context.Context, req *pulumirpc.InvokeRequest) (*pulumirpc.InvokeResponse, error) {
	if req.GetTok() != tokenRun {
		return nil, status.Errorf(codes.InvalidArgument, "unknown function %q: this provider implements only %s",
			req.GetTok(), tokenRun)
	}
	ctx, done := p.ops.start(ctx, 0)
	defer done()
	args, err := unmarshal(req.GetArgs())
	if err != nil {
		return nil, err
	}
	out, failures, err := p.cmd.run(ctx, args)
	if err != nil {
		return nil, err
	}
	if len(failures) > 0 {
		return &pulumirpc.InvokeResponse{Failures: rpcFailures(failures)}, nil
	}
	s, err := marshal(out)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.InvokeResponse{Return: s}, nil
}
