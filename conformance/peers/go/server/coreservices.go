package main

import (
	"context"
	"io"
	"math"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"contracts.example/coreservices"
)

// coreServices is coreservices.CoreServices: one method per RPC pattern.
type coreServices struct {
	coreservices.UnimplementedCoreServicesServer
}

func (coreServices) Ping(_ context.Context, request *coreservices.PingRequest) (*coreservices.PingResponse, error) {
	return &coreservices.PingResponse{
		Message:             request.GetMessage(),
		ServerTimeUnixNanos: time.Now().UnixNano(),
	}, nil
}

func (coreServices) StreamNumbers(request *coreservices.StreamNumbersRequest, stream coreservices.CoreServices_StreamNumbersServer) error {
	interval := time.Duration(request.GetIntervalMs()) * time.Millisecond
	for value := int64(0); value < int64(request.GetCount()); value++ {
		if value > 0 && !pause(stream.Context(), interval) {
			return contextStatus(stream.Context())
		}
		if err := stream.Send(&coreservices.NumberMessage{Value: value}); err != nil {
			return err
		}
	}
	return nil
}

// UploadNumbers checks the running sum after every number, like a checked
// add, so an overflow is reported even if later numbers would bring the sum
// back into range.
func (coreServices) UploadNumbers(stream coreservices.CoreServices_UploadNumbersServer) error {
	var count uint64
	var sum, low, high int64
	for {
		message, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(&coreservices.UploadNumbersResponse{Count: count, Sum: sum, Min: low, Max: high})
		}
		if err != nil {
			return err
		}
		value := message.GetValue()
		if (value > 0 && sum > math.MaxInt64-value) || (value < 0 && sum < math.MinInt64-value) {
			return status.Errorf(codes.OutOfRange, "the sum overflows int64 at number #%d (%d)", count, value)
		}
		sum += value
		if count == 0 || value < low {
			low = value
		}
		if count == 0 || value > high {
			high = value
		}
		count++
	}
}

// Chat answers each message before reading the next, which is what lets a
// client work in lockstep.
func (coreServices) Chat(stream coreservices.CoreServices_ChatServer) error {
	for seq := uint64(0); ; seq++ {
		message, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		reply := &coreservices.ChatMessage{Text: message.GetText(), Seq: seq, Sender: "server"}
		if err := stream.Send(reply); err != nil {
			return err
		}
	}
}
