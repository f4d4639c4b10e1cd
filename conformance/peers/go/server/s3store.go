package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"log"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/awserr"
	"github.com/aws/aws-sdk-go/aws/request"
	"github.com/aws/aws-sdk-go/aws/session"
	"github.com/aws/aws-sdk-go/service/s3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// detachedTimeout bounds the S3 requests that run on a context of their
// own rather than the call's: creating and aborting a multipart upload.
const detachedTimeout = 5 * time.Minute

// maxParts is the most parts S3 takes in one multipart upload.
const maxParts = 10000

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// store is the bucket uploads go to, shared by every call.
type store struct {
	client   *s3.S3
	bucket   string
	partSize int64
	endpoint string

	mu    sync.Mutex
	ready bool // the bucket is known to exist
}

// newStore builds the S3 client from the standard AWS environment. aws-sdk-go
// v1 reads the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and
// AWS_REGION itself, but not AWS_ENDPOINT_URL, which is set here, with
// path-style addressing: S3-compatible servers rarely serve buckets as host
// names. Nothing is sent to S3 until the first upload, so a server whose S3
// is down still starts and serves every other contract.
func newStore(bucket string, partSize int64) (*store, error) {
	if bucket == "" {
		return nil, errors.New("--bucket must name a bucket")
	}
	config := aws.NewConfig().
		// A part's body is in memory: waiting for "100 Continue" only
		// adds a round trip.
		WithS3Disable100Continue(true)
	endpoint := os.Getenv("AWS_ENDPOINT_URL")
	if endpoint != "" {
		config = config.WithEndpoint(endpoint).WithS3ForcePathStyle(true)
	}
	sess, err := session.NewSessionWithOptions(session.Options{
		Config:            *config,
		SharedConfigState: session.SharedConfigEnable,
	})
	if err != nil {
		return nil, fmt.Errorf("reading the AWS configuration: %v", err)
	}
	// S3-compatible servers rarely care about the region, and their users
	// rarely set one.
	if aws.StringValue(sess.Config.Region) == "" {
		sess.Config.Region = aws.String("us-east-1")
	}
	if endpoint == "" {
		endpoint = "AWS S3"
	}
	return &store{client: s3.New(sess), bucket: bucket, partSize: partSize, endpoint: endpoint}, nil
}

func (s *store) String() string {
	return fmt.Sprintf("bucket %q at %s, in parts of %d bytes", s.bucket, s.endpoint, s.partSize)
}

// ensureBucket creates the bucket unless it exists, once per process.
func (s *store) ensureBucket(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready {
		return nil
	}
	_, err := s.client.HeadBucketWithContext(ctx, &s3.HeadBucketInput{Bucket: &s.bucket})
	var failure awserr.RequestFailure
	if err != nil && errors.As(err, &failure) && failure.StatusCode() == 404 {
		_, err = s.client.CreateBucketWithContext(ctx, &s3.CreateBucketInput{Bucket: &s.bucket})
		if errors.As(err, &failure) && (failure.Code() == s3.ErrCodeBucketAlreadyOwnedByYou ||
			failure.Code() == s3.ErrCodeBucketAlreadyExists) {
			err = nil // someone else created it meanwhile
		}
	}
	if err != nil {
		return s3Status(ctx, "checking the bucket "+s.bucket, err)
	}
	s.ready = true
	return nil
}

// s3Status maps an S3 failure to the status the contract names. The end of
// `call` comes first (context.Background() for a request on a context of
// its own): a client that left gets CANCELLED, a passed deadline
// DEADLINE_EXCEEDED. S3 that cannot be reached, fails (5xx) or throttles is
// UNAVAILABLE; a key S3 itself refuses is INVALID_ARGUMENT; anything else S3
// refused (credentials, a missing bucket) is this server's misconfiguration,
// INTERNAL, with S3's error code in the message.
func s3Status(call context.Context, action string, err error) error {
	if call.Err() != nil {
		return contextStatus(call)
	}
	var failure awserr.RequestFailure
	if errors.As(err, &failure) && failure.StatusCode() > 0 {
		text := fmt.Sprintf("S3 refused %s: %s %s", action, failure.Code(), failure.Message())
		switch code := failure.Code(); {
		case code == "InvalidArgument" || code == "KeyTooLongError" || code == "InvalidObjectName" || code == "InvalidURI":
			return status.Error(codes.InvalidArgument, text)
		case code == "InternalError" || code == "ServiceUnavailable" || code == "SlowDown" ||
			code == "RequestTimeout" || failure.StatusCode() >= 500:
			return status.Error(codes.Unavailable, text)
		default:
			return status.Error(codes.Internal, text)
		}
	}
	var aerr awserr.Error
	if errors.As(err, &aerr) && aerr.Code() == request.CanceledErrorCode {
		return status.Errorf(codes.Unavailable, "S3 did not answer %s within %v", action, detachedTimeout)
	}
	// No HTTP answer at all: connection refused, reset, DNS, a timeout.
	return status.Errorf(codes.Unavailable, "S3 is unreachable (%s): %v", action, err)
}

// objectWriter streams one object into the bucket as its bytes arrive. Bytes
// are hashed (SHA-256, CRC32C) on arrival and buffered up to one part. A
// file that never fills a part is stored with one PutObject at the end; a
// larger one becomes a multipart upload, one part at a time, so memory per
// upload stays at one part whatever the file size. Every PutObject and
// UploadPart carries its Content-MD5, so S3 refuses bytes corrupted on the
// way.
//
// Unless finish completes it, the caller must call abort, which aborts the
// multipart upload: a failed upload leaves nothing behind.
type objectWriter struct {
	store    *store
	key      string
	part     []byte
	size     uint64
	sha256   hash.Hash
	crc32c   hash.Hash32
	uploadID *string // set once the multipart upload exists
	parts    []*s3.CompletedPart
}

func (s *store) writer(key string) *objectWriter {
	return &objectWriter{store: s, key: key, sha256: sha256.New(), crc32c: crc32.New(castagnoli)}
}

// write takes the next bytes of the file, sending each part as it fills.
func (w *objectWriter) write(ctx context.Context, chunk []byte) error {
	w.sha256.Write(chunk)
	w.crc32c.Write(chunk)
	w.size += uint64(len(chunk))
	for len(chunk) > 0 {
		if w.part == nil {
			// One allocation of exactly the part size, reused for every part.
			w.part = make([]byte, 0, w.store.partSize)
		}
		take := int(w.store.partSize) - len(w.part)
		if take > len(chunk) {
			take = len(chunk)
		}
		w.part = append(w.part, chunk[:take]...)
		chunk = chunk[take:]
		if int64(len(w.part)) == w.store.partSize {
			if err := w.sendPart(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *objectWriter) sendPart(ctx context.Context) error {
	if w.uploadID == nil {
		if err := w.create(ctx); err != nil {
			return err
		}
	}
	number := int64(len(w.parts) + 1)
	if number > maxParts {
		return status.Errorf(codes.ResourceExhausted,
			"the file is larger than S3's %d parts of %d bytes", maxParts, w.store.partSize)
	}
	output, err := w.store.client.UploadPartWithContext(ctx, &s3.UploadPartInput{
		Bucket:        &w.store.bucket,
		Key:           &w.key,
		UploadId:      w.uploadID,
		PartNumber:    aws.Int64(number),
		Body:          bytes.NewReader(w.part),
		ContentLength: aws.Int64(int64(len(w.part))),
		ContentMD5:    aws.String(md5Base64(w.part)),
	})
	if err != nil {
		return s3Status(ctx, fmt.Sprintf("UploadPart #%d", number), err)
	}
	w.parts = append(w.parts, &s3.CompletedPart{ETag: output.ETag, PartNumber: aws.Int64(number)})
	w.part = w.part[:0]
	return nil
}

// create starts the multipart upload on a context of its own: a call
// cancelled while S3 creates the upload would otherwise leave an upload
// whose id nobody learns, and nobody could abort.
func (w *objectWriter) create(ctx context.Context) error {
	detached, cancel := context.WithTimeout(context.Background(), detachedTimeout)
	defer cancel()
	output, err := w.store.client.CreateMultipartUploadWithContext(detached, &s3.CreateMultipartUploadInput{
		Bucket: &w.store.bucket,
		Key:    &w.key,
	})
	if err != nil {
		return s3Status(ctx, "CreateMultipartUpload", err)
	}
	if output.UploadId == nil {
		return status.Error(codes.Internal, "S3 answered CreateMultipartUpload without an upload id")
	}
	w.uploadID = output.UploadId
	// The caller aborts what was just created.
	if ctx.Err() != nil {
		return contextStatus(ctx)
	}
	return nil
}

// finish stores the object, unless `expected` says the bytes are not the
// ones the client meant to send: then nothing is stored. It returns the
// file's SHA-256 and the object's ETag.
func (w *objectWriter) finish(ctx context.Context, expected []byte) (digest []byte, etag string, err error) {
	digest = w.sha256.Sum(nil)
	if expected != nil && !bytes.Equal(expected, digest) {
		return nil, "", status.Errorf(codes.DataLoss,
			"the received bytes have SHA-256 %x, not the expected %x; nothing was stored", digest, expected)
	}
	if w.uploadID != nil && len(w.part) > 0 {
		if err := w.sendPart(ctx); err != nil {
			return nil, "", err
		}
	}
	// The commit runs on the call's context, as every request for the call
	// does: a client that leaves, or a deadline that passes, cancels it. S3
	// may still have applied a commit whose answer never came; see the
	// README.
	if ctx.Err() != nil {
		return nil, "", contextStatus(ctx)
	}
	if w.uploadID == nil {
		output, err := w.store.client.PutObjectWithContext(ctx, &s3.PutObjectInput{
			Bucket:        &w.store.bucket,
			Key:           &w.key,
			Body:          bytes.NewReader(w.part),
			ContentLength: aws.Int64(int64(len(w.part))),
			ContentMD5:    aws.String(md5Base64(w.part)),
		})
		if err != nil {
			return nil, "", s3Status(ctx, "PutObject", err)
		}
		return digest, aws.StringValue(output.ETag), nil
	}
	output, err := w.store.client.CompleteMultipartUploadWithContext(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          &w.store.bucket,
		Key:             &w.key,
		UploadId:        w.uploadID,
		MultipartUpload: &s3.CompletedMultipartUpload{Parts: w.parts},
	})
	if err != nil {
		return nil, "", s3Status(ctx, "CompleteMultipartUpload", err)
	}
	w.uploadID = nil // completed: nothing left to abort
	return digest, aws.StringValue(output.ETag), nil
}

// abort aborts an unfinished multipart upload and waits until S3 has done
// so, so that a client told about a failure finds nothing left behind. It
// runs on a context of its own: the call's is often done already, which is
// why there is an abort at all.
func (w *objectWriter) abort() {
	if w.uploadID == nil {
		return
	}
	detached, cancel := context.WithTimeout(context.Background(), detachedTimeout)
	defer cancel()
	_, err := w.store.client.AbortMultipartUploadWithContext(detached, &s3.AbortMultipartUploadInput{
		Bucket:   &w.store.bucket,
		Key:      &w.key,
		UploadId: w.uploadID,
	})
	if err != nil {
		log.Printf("could not abort multipart upload %s of %q: %v", *w.uploadID, w.key, err)
	}
	w.uploadID = nil
}

func md5Base64(data []byte) string {
	sum := md5.Sum(data)
	return base64.StdEncoding.EncodeToString(sum[:])
}
