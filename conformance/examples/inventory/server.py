"""A deliberately buggy server of shop/v1/inventory.proto, for the README's
walk-through of testing a contract with no Rust written.

Its three bugs, each against a line of the .proto:
- Reserve refuses the largest valid quantity, 100 (`quantity < 100` where
  the rule says `lte: 100`);
- Reserve reports a negative `remaining` once stock runs low, which the
  response's own rule forbids;
- Countdown stops at 1 instead of 0.

It validates requests with the official protovalidate package, so a
request that breaks a rule gets INVALID_ARGUMENT, as the contract says.
"""

import argparse
import sys
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
# The example's own .proto, the suite's expectations option, and
# buf/validate/validate.proto (which `cargo xtask` copies into proto/vendor).
sys.path[:0] = [str(HERE), str(ROOT / "proto"), str(ROOT / "proto" / "vendor" / "protovalidate")]

pb, services = grpc.protos_and_services("shop/v1/inventory.proto")
import protovalidate  # noqa: E402 (needs buf.validate on the path above)

STOCK = 250


class Inventory(services.InventoryServiceServicer):
    def __init__(self):
        self.validator = protovalidate.Validator()
        self.stock = STOCK

    def check(self, request, context):
        try:
            self.validator.validate(request)
        except protovalidate.ValidationError as error:
            broken = [f"{v.proto.rule_id}: {v.proto.message}" for v in error.violations]
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "; ".join(broken))

    def Reserve(self, request, context):
        self.check(request, context)
        if request.quantity >= 100:  # Bug: the rule allows 100.
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "quantity must be below 100")
        self.stock -= request.quantity  # Bug: never refilled, so it goes negative.
        return pb.ReserveResponse(sku=request.sku, reserved=request.quantity, remaining=self.stock)

    def Countdown(self, request, context):
        self.check(request, context)
        for value in range(getattr(request, "from"), 0, -1):  # Bug: stops at 1.
            yield pb.CountdownResponse(value=value)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default="127.0.0.1:50061", help="HOST:PORT; port 0 picks a free one")
    args = parser.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=[("grpc.so_reuseport", 0)])
    services.add_InventoryServiceServicer_to_server(Inventory(), server)
    name = pb.DESCRIPTOR.services_by_name["InventoryService"].full_name
    health_servicer = health.HealthServicer()
    for service in ["", name]:
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([name, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port(args.addr)
    server.start()
    print(f"listening on {args.addr.rsplit(':', 1)[0]}:{port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
