// Command go-peer-server is an independent Go (grpc-go) implementation of the
// contracts under proto/, inference aside.
//
// The conformance suite is only trustworthy if it passes against servers
// that share no code with our Rust services: this one is written from the
// `.proto` comments alone, on a third gRPC stack (after tonic and grpcio),
// with the Go packages Debian ships and nothing from the Go module proxy.
//
// One port serves calculator.Calculator, streaming.NumberStreamer,
// coreservices.CoreServices, uploader.UploaderService,
// mensagem.ImagemService and uploader.FileUploader (into S3, with
// aws-sdk-go v1), plus grpc.health.v1.Health and server reflection.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"contracts.example/calculator"
	"contracts.example/coreservices"
	"contracts.example/mensagem"
	"contracts.example/streaming"
	"contracts.example/uploader"
	"contracts.example/uploaderpb"
)

// S3 takes parts of 5 MiB to 5 GiB; only the last part may be smaller.
const (
	minPartSize = 5 << 20
	maxPartSize = 5 << 30
)

func main() {
	log.SetOutput(os.Stderr)
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	flags := flag.NewFlagSet("go-peer-server", flag.ExitOnError)
	addr := flags.String("addr", "127.0.0.1:50051", "`HOST:PORT` to listen on; port 0 picks a free one")
	maxMessage := flags.Int("max-message-size", 16<<20, "largest message received or sent, in `BYTES`; larger ones fail with RESOURCE_EXHAUSTED")
	bucket := flags.String("bucket", "uploads", "S3 `BUCKET` uploader.FileUploader stores into; created if missing")
	partSize := flags.Int64("part-size", 8<<20, "`BYTES`: files up to this size are stored with one PutObject, larger ones as a multipart upload in parts of this size (5 MiB to 5 GiB)")
	grace := flags.Float64("shutdown-grace", 10, "`SECONDS` in-flight calls may run after SIGTERM or SIGINT")
	flags.Usage = func() {
		fmt.Fprintf(flags.Output(), "Usage: go-peer-server [flags]\n\n"+
			"Serves every contract under proto/ but inference, with health and reflection.\n"+
			"S3 comes from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION.\n\n")
		flags.PrintDefaults()
	}
	flags.Parse(os.Args[1:])
	fail := func(format string, args ...interface{}) {
		fmt.Fprintf(os.Stderr, "go-peer-server: "+format+"\n", args...)
		os.Exit(2)
	}
	if flags.NArg() > 0 {
		fail("unexpected argument %q; every option is a --flag", flags.Arg(0))
	}
	if *maxMessage < 1 {
		fail("--max-message-size must be at least 1 byte, not %d", *maxMessage)
	}
	if *partSize < minPartSize || *partSize > maxPartSize {
		fail("--part-size must be from %d (5 MiB, S3's smallest part) to %d (5 GiB), not %d", int64(minPartSize), int64(maxPartSize), *partSize)
	}
	if *grace < 0 {
		fail("--shutdown-grace must be 0 or more seconds")
	}

	store, err := newStore(*bucket, *partSize)
	if err != nil {
		fail("%v", err)
	}
	// Installed before "listening" is printed, so that a supervisor that
	// stops us the moment we are up still gets a graceful shutdown.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)

	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		fail("cannot listen on %s: %v", *addr, err)
	}
	server := grpc.NewServer(grpc.MaxRecvMsgSize(*maxMessage), grpc.MaxSendMsgSize(*maxMessage))
	calculator.RegisterCalculatorServer(server, calculatorServer{})
	streaming.RegisterNumberStreamerServer(server, numberStreamer{})
	coreservices.RegisterCoreServicesServer(server, coreServices{})
	uploaderpb.RegisterUploaderServiceServer(server, uploaderService{})
	mensagem.RegisterImagemServiceServer(server, imagemService{})
	uploader.RegisterFileUploaderServer(server, &fileUploader{store: store})
	healthServer := health.NewServer()
	healthpb.RegisterHealthServer(server, healthServer)
	reflection.Register(server)

	// Every registered service, and the whole server (""), is SERVING.
	var names []string
	for name := range server.GetServiceInfo() {
		names = append(names, name)
		healthServer.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	healthServer.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	sort.Strings(names)

	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	log.Printf("serving %s; uploads go to %s", strings.Join(names, ", "), store)
	// Scripts that pass port 0 read the real address from this line.
	fmt.Printf("listening on %s\n", listener.Addr())

	select {
	case err := <-served:
		log.Fatalf("the server stopped: %v", err)
	case sig := <-stop:
		log.Printf("received %v: health is NOT_SERVING, draining calls for up to %gs", sig, *grace)
	}
	// NOT_SERVING first, so health watchers react while in-flight calls
	// drain; whatever outlives the grace period is cancelled.
	healthServer.Shutdown()
	drained := make(chan struct{})
	go func() {
		server.GracefulStop()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(time.Duration(*grace * float64(time.Second))):
		log.Printf("grace period over: cancelling the calls still running")
		server.Stop()
	}
	log.Printf("stopped")
}
