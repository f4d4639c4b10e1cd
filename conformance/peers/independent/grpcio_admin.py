"""grpcio's own admin services, served as they come from PyPI, for the conformance suite.

An independent server: none of its services were written by this project.
`grpcio-admin` registers whatever admin services grpcio ships (in 1.85:
Channelz from `grpcio-channelz`, and CSDS, `envoy.service.status.v3`, from
`grpcio-csds`); `grpcio-health-checking` adds `grpc.health.v1.Health` and
`grpcio-reflection` adds server reflection (v1alpha, the only version
grpcio offers), which lists every service this process serves.

It exists so the suite can be judged too: the suite's generic checks must
hold for any correct gRPC server, and this one implements none of our
contracts and was written by grpcio's authors, not by the suite's. A FAIL
against it is a defect of grpcio or a false alarm of the suite, never of
code in this repository; every one has to be explained.

The service list is not written out by hand: the server is wrapped while
grpcio-admin registers its servicers, and every service name it registers
is recorded, so a later grpcio-admin that adds a service gets it listed in
reflection and reported SERVING by health too.

Conventions as `conformance/peers/python/server.py`: `--addr HOST:PORT`
(port 0 picks a free one); once serving, one line `listening on HOST:PORT`
on stdout; logs on stderr; on SIGTERM or SIGINT every health status turns
NOT_SERVING, in-flight calls drain for `--shutdown-grace` seconds, exit 0.
grpcio 1.85 sometimes never finishes stopping after a streaming call was
sent a body that is not protobuf; then the process exits with status 1,
5 s after the grace period, instead of hanging.

    pip install -r conformance/peers/independent/requirements.txt
    python conformance/peers/independent/grpcio_admin.py --addr 127.0.0.1:0
"""

import argparse
import logging
import os
import signal
import sys
import threading
from concurrent import futures

import grpc
import grpc_admin
from google.protobuf import descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

log = logging.getLogger("grpcio-admin")

# How long past the grace period a stop may take before the process exits
# without it (see the end of `main`).
STOP_MARGIN = 5.0


class Recorder:
    """Stands in for a `grpc.Server` while servicers are added, and records
    the name of every service registered on it; everything else goes to the
    real server."""

    def __init__(self, server):
        self._server = server
        self.names = []

    def _record(self, name):
        if name not in self.names:
            self.names.append(name)

    def add_generic_rpc_handlers(self, handlers):
        handlers = tuple(handlers)
        for handler in handlers:
            if isinstance(handler, grpc.ServiceRpcHandler):
                self._record(handler.service_name())
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(self, service_name, method_handlers):
        self._record(service_name)
        self._server.add_registered_method_handlers(service_name, method_handlers)

    def __getattr__(self, name):
        return getattr(self._server, name)


def undescribed(names, pool=None):
    """The services in `names` that reflection's `FileContainingSymbol`
    cannot answer for, because their descriptors are not in the pool it
    serves (the default pool)."""
    pool = pool or descriptor_pool.Default()
    missing = []
    for name in names:
        try:
            pool.FindFileContainingSymbol(name)
        except KeyError:
            missing.append(name)
    return missing


def build_server(max_message_size, workers):
    """The server with grpcio's admin services, health and reflection.
    Returns the server, its health servicer and every service it serves."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc"),
        options=[
            ("grpc.max_receive_message_length", max_message_size),
            ("grpc.max_send_message_length", max_message_size),
            # grpcio turns SO_REUSEPORT on by default, which would let a second
            # server "bind" a busy port silently instead of failing.
            ("grpc.so_reuseport", 0),
        ],
    )
    recorder = Recorder(server)
    grpc_admin.add_admin_servicers(recorder)

    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, recorder)
    for name in ["", *recorder.names]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)

    names = [*recorder.names, reflection.SERVICE_NAME]
    reflection.enable_server_reflection(names, server)
    return server, health_servicer, names


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default="127.0.0.1:50051", help="HOST:PORT; port 0 picks a free one")
    parser.add_argument("--max-message-size", type=int, default=16 * 1024 * 1024, help="bytes, both directions")
    parser.add_argument("--workers", type=int, default=32, help="threads; each open stream holds one")
    parser.add_argument("--shutdown-grace", type=float, default=10.0, help="seconds in-flight calls may run after SIGTERM")
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    # Installed before "listening" is printed, so that a supervisor that stops
    # us the moment we are up still gets a graceful shutdown.
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    server, health_servicer, names = build_server(args.max_message_size, args.workers)
    for name in undescribed(names):
        log.warning("reflection lists %s but cannot describe it (not in the default descriptor pool)", name)
    port = server.add_insecure_port(args.addr)
    host = args.addr.rpartition(":")[0]
    server.start()
    log.info("serving %s", ", ".join(names))
    print(f"listening on {host}:{port}", flush=True)
    stop.wait()

    # NOT_SERVING first, so health watchers and load balancers react while
    # in-flight calls drain; whatever outlives the grace period is cancelled.
    log.info("shutting down: health is NOT_SERVING, draining calls")
    health_servicer.enter_graceful_shutdown()
    stopped = server.stop(args.shutdown_grace)
    if not stopped.wait(args.shutdown_grace + STOP_MARGIN):
        # grpcio 1.85 sometimes never completes a stop after a stream-request
        # call was aborted for an undecodable message while the client kept
        # its side open (the suite's invalid-protobuf check does exactly
        # that): no handler is running, yet the call is never released.
        # Exit anyway, so that a supervisor that only sees the shell around
        # us (the suite's --target-cmd) is not left with a stray server.
        log.error("grpcio did not finish stopping %.0f s after cancelling every call: exiting anyway", STOP_MARGIN)
        logging.shutdown()
        os._exit(1)
    log.info("stopped")


if __name__ == "__main__":
    main()
