// Command imagem-sender is seed 000's client: it sends images over
// mensagem.ImagemService's bidirectional stream and checks every answer
// against what imagem.proto promises.
//
// It works in lockstep, as the contract allows: it sends one image, waits
// for its answer, and only then sends the next, so a server that holds its
// answers until the client half-closes is caught rather than waited for.
//
//	imagem-sender --addr HOST:PORT [--timeout 10s] [FILE...]
//
// With no FILE it sends a built-in set: a PNG, a JPEG, a GIF, seed 000's
// six bytes and an empty message. It exits 0 when every answer keeps the
// contract, 1 with one line per broken promise when not, and 2 on bad
// arguments.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"io/ioutil"
	"os"
	"time"

	"golang.org/x/image/webp"
	"google.golang.org/grpc"

	"contracts.example/mensagem"
)

type input struct {
	name  string
	bytes []byte
}

func main() {
	flags := flag.NewFlagSet("imagem-sender", flag.ExitOnError)
	addr := flags.String("addr", "127.0.0.1:50051", "`HOST:PORT` of the server")
	timeout := flags.Duration("timeout", 10*time.Second, "how long to wait to connect, and for each answer")
	flags.Usage = func() {
		fmt.Fprintf(flags.Output(), "Usage: imagem-sender --addr HOST:PORT [FILE...]\n\n"+
			"Sends each FILE (default: a built-in set) as one image, in lockstep, and checks each answer.\n\n")
		flags.PrintDefaults()
	}
	flags.Parse(os.Args[1:])
	inputs, err := readInputs(flags.Args())
	if err != nil {
		fmt.Fprintf(os.Stderr, "imagem-sender: %v\n", err)
		os.Exit(2)
	}
	if err := run(*addr, *timeout, inputs); err != nil {
		fmt.Fprintf(os.Stderr, "imagem-sender: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("%s: %d answers, each keeping the contract\n", *addr, len(inputs))
}

func readInputs(files []string) ([]input, error) {
	if len(files) == 0 {
		return builtIn(), nil
	}
	var inputs []input
	for _, file := range files {
		data, err := ioutil.ReadFile(file)
		if err != nil {
			return nil, err
		}
		inputs = append(inputs, input{file, data})
	}
	return inputs, nil
}

func run(addr string, timeout time.Duration, inputs []input) error {
	dial, cancelDial := context.WithTimeout(context.Background(), timeout)
	defer cancelDial()
	conn, err := grpc.DialContext(dial, addr, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		return fmt.Errorf("cannot connect to %s within %v: %v", addr, timeout, err)
	}
	defer conn.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := mensagem.NewImagemServiceClient(conn).UploadImagem(ctx)
	if err != nil {
		return fmt.Errorf("cannot start UploadImagem: %v", err)
	}
	for index, in := range inputs {
		if err := stream.Send(&mensagem.ImagemRequest{Imagem: in.bytes}); err != nil {
			_, err = stream.Recv() // the status that ended the stream
			return fmt.Errorf("sending image #%d (%s): the stream ended: %v", index, in.name, err)
		}
		answer, err := recvWithin(stream, timeout)
		if err != nil {
			return fmt.Errorf("image #%d (%s): %v", index, in.name, err)
		}
		if problems := check(answer, in.bytes, uint64(index)); len(problems) > 0 {
			return fmt.Errorf("image #%d (%s) was answered against the contract:\n  %s\n  answer: %v",
				index, in.name, joinLines(problems), answer)
		}
	}
	if err := stream.CloseSend(); err != nil {
		return fmt.Errorf("half-closing: %v", err)
	}
	if extra, err := recvWithin(stream, timeout); err != io.EOF {
		if err != nil {
			return fmt.Errorf("after the last image: the stream ended with %v, not OK", err)
		}
		return fmt.Errorf("after the last image: an answer no image asked for: %v", extra)
	}
	return nil
}

// recvWithin waits for the next answer, for at most `timeout`.
func recvWithin(stream mensagem.ImagemService_UploadImagemClient, timeout time.Duration) (*mensagem.ImagemResposta, error) {
	type received struct {
		answer *mensagem.ImagemResposta
		err    error
	}
	done := make(chan received, 1)
	go func() {
		answer, err := stream.Recv()
		done <- received{answer, err}
	}()
	select {
	case r := <-done:
		return r.answer, r.err
	case <-time.After(timeout):
		return nil, fmt.Errorf("no answer within %v, while the stream stays open: the contract says each "+
			"response is sent as soon as its request has been processed, not after the client half-closes", timeout)
	}
}

// check lists the promises of imagem.proto that `answer` breaks for `data`.
func check(answer *mensagem.ImagemResposta, data []byte, index uint64) []string {
	var problems []string
	fail := func(format string, args ...interface{}) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if answer.GetIndex() != index {
		fail("index is %d, not %d", answer.GetIndex(), index)
	}
	if answer.GetByteCount() != uint64(len(data)) {
		fail("byte_count is %d, not %d", answer.GetByteCount(), len(data))
	}
	digest := sha256.Sum256(data)
	if want := hex.EncodeToString(digest[:]); answer.GetSha256Hex() != want {
		fail("sha256_hex is %q, not %q", answer.GetSha256Hex(), want)
	}
	format, decode := signature(data)
	if answer.GetFormat() != format {
		fail("format is %v, but the signature bytes say %v", answer.GetFormat(), format)
	}
	if answer.GetMensagem() == "" {
		fail("mensagem is empty; it must be a sentence about the image")
	}
	if (answer.Width == nil) != (answer.Height == nil) {
		fail("width and height must be present together (rule dimensions_together)")
	}
	if (answer.Width != nil && answer.GetWidth() == 0) || (answer.Height != nil && answer.GetHeight() == 0) {
		fail("width and height must be above 0 when present")
	}
	if format == mensagem.ImageFormat_IMAGE_FORMAT_UNKNOWN && answer.Width != nil {
		fail("bytes of no known format have no dimensions, but %dx%d was reported", answer.GetWidth(), answer.GetHeight())
	}
	// This client's own decoders are the oracle: an image they decode whole
	// must be reported with its size.
	if decode != nil {
		if decoded, err := decode(bytes.NewReader(data)); err == nil {
			width, height := uint32(decoded.Bounds().Dx()), uint32(decoded.Bounds().Dy())
			if answer.Width == nil {
				fail("the image decodes (%dx%d), but no dimensions were reported", width, height)
			} else if answer.GetWidth() != width || answer.GetHeight() != height {
				fail("dimensions are %dx%d, not %dx%d", answer.GetWidth(), answer.GetHeight(), width, height)
			}
		}
	}
	return problems
}

// signature is the format the leading bytes name, as the contract defines
// it, and this client's decoder for it.
func signature(data []byte) (mensagem.ImageFormat, func(io.Reader) (image.Image, error)) {
	switch {
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return mensagem.ImageFormat_IMAGE_FORMAT_PNG, png.Decode
	case bytes.HasPrefix(data, []byte{0xff, 0xd8, 0xff}):
		return mensagem.ImageFormat_IMAGE_FORMAT_JPEG, jpeg.Decode
	case bytes.HasPrefix(data, []byte("GIF87a")), bytes.HasPrefix(data, []byte("GIF89a")):
		return mensagem.ImageFormat_IMAGE_FORMAT_GIF, func(r io.Reader) (image.Image, error) {
			all, err := gif.DecodeAll(r) // to the trailer: the whole file
			if err != nil {
				return nil, err
			}
			return all.Image[0], nil
		}
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		return mensagem.ImageFormat_IMAGE_FORMAT_WEBP, webp.Decode
	}
	return mensagem.ImageFormat_IMAGE_FORMAT_UNKNOWN, nil
}

// builtIn is the default set: one image of each format Go can encode, the
// seed's six bytes, and an empty message.
func builtIn() []input {
	picture := image.NewRGBA(image.Rect(0, 0, 37, 21))
	for y := 0; y < 21; y++ {
		for x := 0; x < 37; x++ {
			picture.Set(x, y, color.RGBA{uint8(7 * x), uint8(11 * y), uint8(x ^ y), 255})
		}
	}
	var pngBytes, jpegBytes, gifBytes bytes.Buffer
	must := func(err error) {
		if err != nil {
			panic(err) // encoding to memory cannot fail
		}
	}
	must(png.Encode(&pngBytes, picture))
	must(jpeg.Encode(&jpegBytes, picture, nil))
	must(gif.Encode(&gifBytes, picture, nil))
	return []input{
		{"built-in 37x21 PNG", pngBytes.Bytes()},
		{"built-in 37x21 JPEG", jpegBytes.Bytes()},
		{"built-in 37x21 GIF", gifBytes.Bytes()},
		{"seed 000's bytes 0..5", []byte{0, 1, 2, 3, 4, 5}},
		{"an empty image", nil},
	}
}

func joinLines(lines []string) string {
	var b bytes.Buffer
	for i, line := range lines {
		if i > 0 {
			b.WriteString("\n  ")
		}
		b.WriteString(line)
	}
	return b.String()
}
