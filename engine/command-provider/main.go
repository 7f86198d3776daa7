// Command pulumi-resource-command is a stand-in for the `command` resource provider
// plugin, version 1.2.1, for machines that cannot download upstream's binary. It
// implements the part of the package the project's @pulumi/command SDK uses: the
// command:local:Command resource and the command:local:run invoke, with upstream's
// semantics (see README.md).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-command: %v\n", err)
		os.Exit(1)
	}
}

// serve follows the resource-plugin protocol: the engine passes its own address as
// the only positional argument (none when it attaches to a running provider), the
// provider prints the port it listens on, then serves until ctx ends (the engine
// interrupts the plugin when it is done with it).
func serve(ctx context.Context, argv []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("pulumi-resource-command", flag.ContinueOnError)
	// Flags the engine may pass to every plugin; accepted and ignored.
	fs.Bool("logtostderr", false, "log to stderr (ignored)")
	fs.Bool("logflow", false, "flow logging settings (ignored)")
	fs.Int("v", 0, "log verbosity (ignored)")
	fs.String("tracing", "", "tracing endpoint (ignored)")
	fs.String("root", "", "project root (ignored)")
	if err := fs.Parse(argv); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("expected at most one argument (the engine address), got %d", fs.NArg())
	}

	var host *engineHost
	if fs.NArg() == 1 {
		addr := fs.Arg(0)
		var err error
		if host, err = dialEngine(addr); err != nil {
			return err
		}
		defer func() { _ = host.conn.Close() }()
		// Stop when the engine goes away.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		if err := rpcutil.Healthcheck(ctx, addr, 5*time.Minute, cancel); err != nil {
			return fmt.Errorf("could not start the engine health check: %w", err)
		}
	}

	prov := newProvider(host)
	cancelChannel := make(chan bool)
	go func() {
		<-ctx.Done()
		// Kill any command still running before the server stops.
		prov.ops.cancelAll()
		close(cancelChannel)
	}()

	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: cancelChannel,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterResourceProviderServer(srv, prov)
			return nil
		},
	})
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "%d\n", handle.Port); err != nil {
		return err
	}
	return <-handle.Done
}
