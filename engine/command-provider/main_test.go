package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// TestServeSpeaksThePluginProtocol starts the provider as the engine would (engine
// address as argument, port on stdout) and drives a command over gRPC.
func TestServeSpeaksThePluginProtocol(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	engine := grpc.NewServer()
	eng := &fakeEngine{}
	pulumirpc.RegisterEngineServer(engine, eng)
	go func() { _ = engine.Serve(lis) }()
	defer engine.Stop()

	ctx, cancel := context.WithCancel(context.Background())
	outR, outW := io.Pipe()
	served := make(chan error, 1)
	go func() {
		served <- serve(ctx, []string{"--logtostderr", "-v=9", lis.Addr().String()}, outW)
		_ = outW.Close()
	}()
	port, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, outR) }()

	conn, err := grpc.NewClient("127.0.0.1:"+strings.TrimSpace(port),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	client := pulumirpc.NewResourceProviderClient(conn)

	info, err := client.GetPluginInfo(ctx, &emptypb.Empty{})
	if err != nil || info.GetVersion() != "1.2.1" {
		t.Fatalf("GetPluginInfo = %v, %v", info, err)
	}
	hs, err := client.Handshake(ctx, &pulumirpc.ProviderHandshakeRequest{EngineAddress: lis.Addr().String()})
	if err != nil || !hs.GetAcceptSecrets() {
		t.Fatalf("Handshake = %v, %v", hs, err)
	}
	props := mustMarshal(t, resource.PropertyMap{
		"create":      str(`echo "$X"`),
		"environment": obj("X", resource.MakeSecret(str("over-grpc"))),
	})
	resp, err := client.Create(ctx, &pulumirpc.CreateRequest{Urn: testURN, Properties: props})
	if err != nil {
		t.Fatal(err)
	}
	out := mustUnmarshal(t, resp.GetProperties())
	if so, sec := plainString(t, out["stdout"]); so != "over-grpc" || !sec {
		t.Fatalf("stdout = %q secret=%v", so, sec)
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	eng.mu.Lock()
	defer eng.mu.Unlock()
	if len(eng.logs) != 1 || eng.logs[0].GetMessage() != "[secret]" {
		t.Fatalf("engine logs = %v", eng.logs)
	}
}
