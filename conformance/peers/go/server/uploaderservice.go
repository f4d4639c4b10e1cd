package main

import (
	"io"
	"math"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"contracts.example/uploaderpb"
)

// uploaderService is uploader.UploaderService (seed 004): it counts chunks
// and drops them, so memory does not grow with the upload.
type uploaderService struct {
	uploaderpb.UnimplementedUploaderServiceServer
}

func (uploaderService) UploadImage(stream uploaderpb.UploaderService_UploadImageServer) error {
	var chunks int32
	var total int64
	for {
		chunk, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(&uploaderpb.UploadSummary{TotalChunks: chunks, TotalBytes: total})
		}
		if err != nil {
			return err
		}
		if chunks == math.MaxInt32 {
			return status.Errorf(codes.OutOfRange,
				"more than %d chunks: total_chunks (int32) cannot count them", int32(math.MaxInt32))
		}
		chunks++
		// Only exabytes could overflow; saturate rather than fail a real upload.
		if size := int64(len(chunk.GetData())); total > math.MaxInt64-size {
			total = math.MaxInt64
		} else {
			total += size
		}
	}
}
