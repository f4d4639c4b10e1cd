// Command chunk-uploader is seed 004's client: it streams random chunks to
// uploader.UploaderService and checks the summary against what
// uploader.proto promises: total_chunks is the number of messages sent,
// empty ones included, and total_bytes the sum of their lengths.
//
//	chunk-uploader --addr HOST:PORT [--chunks 5] [--chunk-size 1024]
//	               [--random-sizes] [--seed N] [--delay 0s]
//
// The seed sends five 1 KiB chunks 50 ms apart; --random-sizes draws each
// length from 0 to --chunk-size instead, so empty chunks are sent too. It
// exits 0 when the summary keeps the contract, 1 when it does not (or the
// server could not be reached), and 2 on bad arguments.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"time"

	"google.golang.org/grpc"

	"contracts.example/uploaderpb"
)

func main() {
	flags := flag.NewFlagSet("chunk-uploader", flag.ExitOnError)
	addr := flags.String("addr", "127.0.0.1:50051", "`HOST:PORT` of the server")
	chunks := flags.Int("chunks", 5, "how many chunks to send (0 is a valid, empty upload)")
	chunkSize := flags.Int("chunk-size", 1024, "`BYTES` per chunk, or the most with --random-sizes")
	randomSizes := flags.Bool("random-sizes", false, "draw each chunk's length from 0 to --chunk-size")
	seed := flags.Int64("seed", time.Now().UnixNano(), "seed of the random bytes and sizes")
	delay := flags.Duration("delay", 0, "pause between chunks (the seed's client waits 50ms)")
	timeout := flags.Duration("timeout", 30*time.Second, "deadline of the whole upload")
	flags.Usage = func() {
		fmt.Fprintf(flags.Output(), "Usage: chunk-uploader --addr HOST:PORT [flags]\n\n"+
			"Streams random chunks to uploader.UploaderService and checks the summary.\n\n")
		flags.PrintDefaults()
	}
	flags.Parse(os.Args[1:])
	if flags.NArg() > 0 || *chunks < 0 || *chunkSize < 0 {
		fmt.Fprintf(os.Stderr, "chunk-uploader: --chunks and --chunk-size must be 0 or more, and nothing else is taken\n")
		os.Exit(2)
	}
	if err := run(*addr, *chunks, *chunkSize, *randomSizes, *seed, *delay, *timeout); err != nil {
		fmt.Fprintf(os.Stderr, "chunk-uploader: %v (--seed %d replays it)\n", err, *seed)
		os.Exit(1)
	}
}

func run(addr string, chunks, chunkSize int, randomSizes bool, seed int64, delay, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := grpc.DialContext(ctx, addr, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		return fmt.Errorf("cannot connect to %s: %v", addr, err)
	}
	defer conn.Close()
	stream, err := uploaderpb.NewUploaderServiceClient(conn).UploadImage(ctx)
	if err != nil {
		return fmt.Errorf("cannot start UploadImage: %v", err)
	}
	random := rand.New(rand.NewSource(seed))
	var sentBytes int64
	for i := 0; i < chunks; i++ {
		size := chunkSize
		if randomSizes {
			size = random.Intn(chunkSize + 1)
		}
		data := make([]byte, size)
		random.Read(data)
		if err := stream.Send(&uploaderpb.ImageChunk{Data: data}); err != nil {
			_, err = stream.CloseAndRecv() // the status that ended the call
			return fmt.Errorf("the server ended the call after %d of %d chunks: %v", i, chunks, err)
		}
		sentBytes += int64(size)
		if delay > 0 && i+1 < chunks {
			time.Sleep(delay)
		}
	}
	summary, err := stream.CloseAndRecv()
	if err != nil {
		return fmt.Errorf("UploadImage failed after %d chunks of %d bytes in all: %v", chunks, sentBytes, err)
	}
	if summary.GetTotalChunks() != int32(chunks) || summary.GetTotalBytes() != sentBytes {
		return fmt.Errorf("the summary says %d chunks and %d bytes, but %d chunks and %d bytes were sent "+
			"(the contract counts every message, empty ones included)",
			summary.GetTotalChunks(), summary.GetTotalBytes(), chunks, sentBytes)
	}
	fmt.Printf("%s: %d chunks, %d bytes, as sent\n", addr, summary.GetTotalChunks(), summary.GetTotalBytes())
	return nil
}
