package main

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"contracts.example/calculator"
)

// maxCube is the largest |number| whose cube fits in an int64:
// 2097151^3 < 2^63 <= 2097152^3, and the bound is symmetric.
const maxCube = 2097151

// calculatorServer is calculator.Calculator: exact cubes or OUT_OF_RANGE,
// never a wrapped result.
type calculatorServer struct {
	calculator.UnimplementedCalculatorServer
}

func (calculatorServer) Cube(_ context.Context, request *calculator.CubeRequest) (*calculator.CubeResponse, error) {
	number := request.GetNumber()
	// Compared on both sides rather than through an absolute value, which
	// overflows for the smallest int64.
	if number < -maxCube || number > maxCube {
		return nil, status.Errorf(codes.OutOfRange,
			"the cube of %d does not fit in int64: |number| must be at most %d", number, maxCube)
	}
	return &calculator.CubeResponse{Result: number * number * number}, nil
}
