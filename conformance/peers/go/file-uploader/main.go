// Command file-uploader is seed 001's client: it streams a local file to
// uploader.FileUploader in chunks and checks the answer against what
// upload.proto promises.
//
//	file-uploader --addr HOST:PORT [--key NAME] [--chunk-size BYTES]
//	              [--send-sha256 | --sha256 HEX] [--repeat-name]
//	              [--expect CODE] FILE
//
// With --expect OK (the default) the upload must succeed, and the answer
// must report exactly the file sent: its key, size, SHA-256 and CRC32C
// (computed here), with success = true and an ETag. With --expect CODE
// (e.g. INVALID_ARGUMENT, DATA_LOSS) the call must fail with that status.
// It exits 0 when the server kept the contract, 1 when it did not (or could
// not be reached), and 2 on bad arguments.
//
// Only the answer is checked: whether S3 holds the bytes is for whoever
// owns the bucket to read back.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"contracts.example/uploader"
)

func main() {
	flags := flag.NewFlagSet("file-uploader", flag.ExitOnError)
	addr := flags.String("addr", "127.0.0.1:50051", "`HOST:PORT` of the server")
	key := flags.String("key", "", "object key to store the file under (default: the file's base name)")
	chunkSize := flags.Int("chunk-size", 1<<20, "`BYTES` per message")
	sendSHA := flags.Bool("send-sha256", false, "send the file's SHA-256 as expected_sha256")
	givenSHA := flags.String("sha256", "", "send this `HEX` as expected_sha256 (e.g. a wrong one, with --expect DATA_LOSS)")
	repeatName := flags.Bool("repeat-name", false, "repeat the name in every message, not only the first")
	expect := flags.String("expect", "OK", "the status the call must end with: OK, or a `CODE` such as INVALID_ARGUMENT")
	timeout := flags.Duration("timeout", time.Minute, "deadline of the whole upload")
	flags.Usage = func() {
		fmt.Fprintf(flags.Output(), "Usage: file-uploader --addr HOST:PORT [flags] FILE\n\n"+
			"Uploads FILE to uploader.FileUploader in chunks and checks the answer.\n\n")
		flags.PrintDefaults()
	}
	flags.Parse(os.Args[1:])
	usage := func(format string, args ...interface{}) {
		fmt.Fprintf(os.Stderr, "file-uploader: "+format+"\n", args...)
		os.Exit(2)
	}
	if flags.NArg() != 1 {
		usage("give exactly one FILE to upload (got %d arguments)", flags.NArg())
	}
	if *chunkSize < 1 {
		usage("--chunk-size must be at least 1 byte")
	}
	if *sendSHA && *givenSHA != "" {
		usage("--send-sha256 and --sha256 go separately")
	}
	want, ok := parseCode(*expect)
	if !ok {
		usage("--expect %q is not a gRPC status code name such as OK or INVALID_ARGUMENT", *expect)
	}
	file := flags.Arg(0)
	if *key == "" {
		*key = filepath.Base(file)
	}
	upload := upload{addr: *addr, key: *key, file: file, chunkSize: *chunkSize, repeatName: *repeatName, timeout: *timeout}
	if *givenSHA != "" {
		upload.expectedSHA = givenSHA
	}
	if *sendSHA {
		digest, err := fileSHA256(file)
		if err != nil {
			usage("%v", err)
		}
		upload.expectedSHA = &digest
	}
	if err := upload.run(want); err != nil {
		fmt.Fprintf(os.Stderr, "file-uploader: %v\n", err)
		os.Exit(1)
	}
}

type upload struct {
	addr, key, file string
	chunkSize       int
	repeatName      bool
	expectedSHA     *string
	timeout         time.Duration
}

// What was sent, computed as it was read.
type sent struct {
	size   uint64
	sha256 string
	crc32c uint32
}

func (u upload) run(want codes.Code) error {
	ctx, cancel := context.WithTimeout(context.Background(), u.timeout)
	defer cancel()
	conn, err := grpc.DialContext(ctx, u.addr, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		return fmt.Errorf("cannot connect to %s: %v", u.addr, err)
	}
	defer conn.Close()
	stream, err := uploader.NewFileUploaderClient(conn).Upload(ctx)
	if err != nil {
		return fmt.Errorf("cannot start Upload: %v", err)
	}
	file, err := os.Open(u.file)
	if err != nil {
		return err
	}
	defer file.Close()

	digest, crc := sha256.New(), crc32.New(crc32.MakeTable(crc32.Castagnoli))
	var size uint64
	buffer := make([]byte, u.chunkSize)
	for index := 0; ; index++ {
		n, readErr := io.ReadFull(file, buffer)
		if readErr != nil && readErr != io.EOF && readErr != io.ErrUnexpectedEOF {
			return fmt.Errorf("reading %s: %v", u.file, readErr)
		}
		// The first message always goes, so an empty file is one empty chunk.
		if n == 0 && index > 0 {
			break
		}
		request := &uploader.UploadRequest{Chunk: buffer[:n]}
		if index == 0 || u.repeatName {
			request.Filename = u.key
		}
		if index == 0 {
			request.ExpectedSha256 = u.expectedSHA
		}
		if err := stream.Send(request); err != nil {
			// The server ended the call early: its status says why.
			_, err = stream.CloseAndRecv()
			return u.judge(nil, err, want, sent{})
		}
		digest.Write(buffer[:n])
		crc.Write(buffer[:n])
		size += uint64(n)
		if readErr != nil {
			break
		}
	}
	response, err := stream.CloseAndRecv()
	return u.judge(response, err, want, sent{size, hex.EncodeToString(digest.Sum(nil)), crc.Sum32()})
}

// judge compares the call's outcome with `want`, and an OK answer with
// what was sent.
func (u upload) judge(response *uploader.UploadResponse, err error, want codes.Code, file sent) error {
	got := status.Code(err)
	if got != want {
		if err == nil {
			return fmt.Errorf("the upload of %s as %q succeeded (%q), but %s was expected", u.file, u.key, response.GetMessage(), canonical(want))
		}
		return fmt.Errorf("the upload of %s as %q ended with %s, not %s: %s", u.file, u.key, canonical(got), canonical(want), status.Convert(err).Message())
	}
	if want != codes.OK {
		fmt.Printf("%s: %s, as expected: %s\n", u.key, canonical(got), status.Convert(err).Message())
		return nil
	}
	var problems []string
	fail := func(format string, args ...interface{}) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if !response.GetSuccess() {
		fail("success is false on an OK answer")
	}
	if response.GetKey() != u.key {
		fail("key is %q, not %q", response.GetKey(), u.key)
	}
	if response.GetSize() != file.size {
		fail("size is %d, not the %d bytes sent", response.GetSize(), file.size)
	}
	if response.GetSha256Hex() != file.sha256 {
		fail("sha256_hex is %q, not %q", response.GetSha256Hex(), file.sha256)
	}
	if response.GetCrc32C() != file.crc32c {
		fail("crc32c is %08x, not %08x", response.GetCrc32C(), file.crc32c)
	}
	if response.GetMessage() == "" {
		fail("message is empty; it must be a sentence about the upload")
	}
	if response.GetEtag() == "" {
		fail("etag is empty; S3 gives every object one")
	}
	if len(problems) > 0 {
		return fmt.Errorf("the answer to the upload of %s as %q breaks the contract:\n  %s\n  answer: %v",
			u.file, u.key, strings.Join(problems, "\n  "), response)
	}
	fmt.Printf("%s: stored %d bytes, SHA-256 %s, CRC32C %08x, ETag %s\n",
		response.GetKey(), response.GetSize(), response.GetSha256Hex(), response.GetCrc32C(), response.GetEtag())
	return nil
}

func fileSHA256(path string) (string, error) {
	file, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer file.Close()
	digest := sha256.New()
	if _, err := io.Copy(digest, file); err != nil {
		return "", fmt.Errorf("reading %s: %v", path, err)
	}
	return hex.EncodeToString(digest.Sum(nil)), nil
}

// parseCode reads a status code by its canonical name (OK,
// INVALID_ARGUMENT, ...).
func parseCode(name string) (codes.Code, bool) {
	for code := codes.OK; code <= codes.Unauthenticated; code++ {
		if canonical(code) == strings.ToUpper(name) {
			return code, true
		}
	}
	return 0, false
}

// canonical is a code's name as the gRPC spec writes it: codes.Code's
// String gives Go's CamelCase ("InvalidArgument").
func canonical(code codes.Code) string {
	var b strings.Builder
	previous := 'A'
	for _, r := range code.String() {
		if r >= 'A' && r <= 'Z' && previous >= 'a' && previous <= 'z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
		previous = r
	}
	name := strings.ToUpper(b.String())
	if name == "CANCELED" {
		return "CANCELLED" // the spec's spelling
	}
	return name
}
