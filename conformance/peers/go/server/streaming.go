package main

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"contracts.example/streaming"
)

// maxRangeValues is the most values one StreamNumbers call may ask for.
const maxRangeValues = 1_000_000

// numberStreamer is streaming.NumberStreamer: an inclusive range, checked
// before the first value, so a refused call sends nothing but its status.
type numberStreamer struct {
	streaming.UnimplementedNumberStreamerServer
}

func (numberStreamer) StreamNumbers(request *streaming.StreamRequest, stream streaming.NumberStreamer_StreamNumbersServer) error {
	start, end := request.GetStart(), request.GetEnd()
	// The contract's buf.validate rules, by their ids.
	if start > end {
		return status.Errorf(codes.InvalidArgument,
			"start_not_after_end: start must not be after end (start %d, end %d)", start, end)
	}
	// end - start in uint64 cannot overflow once start <= end.
	if uint64(end)-uint64(start) >= maxRangeValues {
		return status.Errorf(codes.InvalidArgument,
			"at_most_a_million_values: the range must hold at most 1,000,000 values (start %d, end %d)", start, end)
	}
	interval := time.Duration(request.GetIntervalMs()) * time.Millisecond
	for value := start; ; value++ {
		if value != start && !pause(stream.Context(), interval) {
			return contextStatus(stream.Context())
		}
		if err := stream.Send(&streaming.NumberResponse{Value: value}); err != nil {
			return err
		}
		// Tested before the increment, so an end of MaxInt64 never wraps.
		if value == end {
			return nil
		}
	}
}

// pause waits for `interval`, and says false instead if the call ends
// first (the client cancelled, or its deadline passed), so a paced stream
// stops promptly rather than at its next value.
func pause(ctx context.Context, interval time.Duration) bool {
	if interval <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(interval)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// contextStatus is the status of a call whose context is done.
func contextStatus(ctx context.Context) error {
	if ctx.Err() == context.DeadlineExceeded {
		return status.Error(codes.DeadlineExceeded, "the call's deadline passed")
	}
	return status.Error(codes.Canceled, "the client cancelled the call")
}
