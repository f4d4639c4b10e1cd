package main

import (
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"contracts.example/uploader"
)

// maxKeyBytes is the longest object key S3 accepts.
const maxKeyBytes = 1024

// fileUploader is uploader.FileUploader (seed 001): each call streams one
// file into S3.
type fileUploader struct {
	uploader.UnimplementedFileUploaderServer
	store *store
}

func (f *fileUploader) Upload(stream uploader.FileUploader_UploadServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err == io.EOF {
		return status.Error(codes.InvalidArgument, "the stream is empty: the first message must name the file")
	}
	if err != nil {
		return err
	}
	key := first.GetFilename()
	if problem := keyProblem(key); problem != "" {
		return status.Errorf(codes.InvalidArgument, "the file name %s %s", shown(key), problem)
	}
	var expected []byte
	if first.ExpectedSha256 != nil {
		if expected = parseDigest(first.GetExpectedSha256()); expected == nil {
			return status.Errorf(codes.InvalidArgument,
				"expected_sha256 %s is not 64 lowercase hexadecimal characters", shown(first.GetExpectedSha256()))
		}
	}
	if err := f.store.ensureBucket(ctx); err != nil {
		return err
	}

	writer := f.store.writer(key)
	response, err := receive(stream, writer, first, expected)
	if err != nil {
		writer.abort()
		return err
	}
	return stream.SendAndClose(response)
}

// receive writes every chunk of the stream, then stores the object.
func receive(stream uploader.FileUploader_UploadServer, writer *objectWriter, first *uploader.UploadRequest, expected []byte) (*uploader.UploadResponse, error) {
	ctx := stream.Context()
	key := first.GetFilename()
	if err := writer.write(ctx, first.GetChunk()); err != nil {
		return nil, err
	}
	for {
		message, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if name := message.GetFilename(); name != "" && name != key {
			return nil, status.Errorf(codes.InvalidArgument,
				"the file was named %s, but a later message names %s", shown(key), shown(name))
		}
		if err := writer.write(ctx, message.GetChunk()); err != nil {
			return nil, err
		}
	}
	digest, etag, err := writer.finish(ctx, expected)
	if err != nil {
		return nil, err
	}
	return &uploader.UploadResponse{
		Message:   fmt.Sprintf("Stored %q: %d bytes, SHA-256 %x.", key, writer.size, digest),
		Success:   true,
		Key:       key,
		Size:      writer.size,
		Sha256Hex: fmt.Sprintf("%x", digest),
		Crc32C:    writer.crc32c.Sum32(),
		Etag:      etag,
	}, nil
}

// keyProblem says what is wrong with an object key, as the contract
// restricts them, or "" when nothing is.
func keyProblem(key string) string {
	switch {
	case key == "":
		return "is empty: the first message must name the file"
	case len(key) > maxKeyBytes:
		return fmt.Sprintf("is %d bytes long; at most %d are allowed", len(key), maxKeyBytes)
	case !utf8.ValidString(key):
		return "is not UTF-8"
	case strings.HasPrefix(key, "/"):
		return "starts with '/'"
	case strings.HasSuffix(key, "/"):
		return "ends with '/', which names a folder, not a file"
	}
	for _, segment := range strings.Split(key, "/") {
		if segment == "" || segment == "." || segment == ".." {
			return fmt.Sprintf("has a %q path segment", segment)
		}
	}
	for _, r := range key {
		if unicode.IsControl(r) {
			return fmt.Sprintf("contains the control character %U", r)
		}
	}
	return ""
}

// parseDigest reads a lowercase hex SHA-256, or gives nil.
func parseDigest(text string) []byte {
	if len(text) != 64 {
		return nil
	}
	digest := make([]byte, 32)
	for i := 0; i < 64; i += 2 {
		high, ok1 := hexDigit(text[i])
		low, ok2 := hexDigit(text[i+1])
		if !ok1 || !ok2 {
			return nil
		}
		digest[i/2] = high<<4 | low
	}
	return digest
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// shown quotes a name for an error message, cut to 64 characters: a status
// message travels in an HTTP/2 header, and one that echoed a name of any
// length could outgrow the client's header limit.
func shown(name string) string {
	const most = 64
	if utf8.RuneCountInString(name) <= most {
		return fmt.Sprintf("%q", name)
	}
	runes := []rune(name)
	return fmt.Sprintf("%q... (%d bytes)", string(runes[:most]), len(name))
}
