"""Independent Python (grpcio) implementation of every contract under proto/.

The conformance suite is only trustworthy if it passes against servers that
share no code with our Rust services: this one is written from the
`.proto` comments alone, on a different gRPC stack, so a check that passes
against both is checking the contract rather than one implementation's quirks.

Stubs are generated from the `.proto` files at start-up (grpcio-tools), so
nothing generated is committed and the server always implements the
`.proto` files it is tested against, never an older copy of them.
"""

import argparse
import functools
import hashlib
import io
import logging
import signal
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from PIL import Image

from containers import png_is_whole
from security import Credentials, TokenInterceptor

# Not named `inference`: that name is the proto package grpcio-tools imports
# the generated `inference.inference_pb2` from.
from inference_methods import DEFAULT_MODEL, InferenceMethods

log = logging.getLogger("peer")

# Every contract, as (proto file relative to the proto root, service name).
CONTRACTS = {
    "calculator": ("calculator/calculator.proto", "Calculator"),
    "streaming": ("streaming/streaming.proto", "NumberStreamer"),
    "coreservices": ("coreservices/service.proto", "CoreServices"),
    "uploader": ("uploader/uploader.proto", "UploaderService"),
    "mensagem": ("mensagem/imagem.proto", "ImagemService"),
    "inference": ("inference/inference.proto", "InferenceMethods"),
}

# Python integers never overflow, so every int64 bound the contracts promise
# has to be checked explicitly.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_CUBE_INPUT = 2_097_151  # 2097151^3 < 2^63 <= 2097152^3; bound is symmetric.
MAX_CHUNKS = 2**31 - 1  # total_chunks is an int32.

# Decoding allocates width x height x channels whatever the file size, so a
# 100-byte PNG header can ask for gigabytes. Above this budget (the Rust
# server's) an image is described without dimensions instead of decoded.
MAX_DECODE_BYTES = 512 * 1024 * 1024
# Our budget replaces Pillow's pixel-count heuristic, which would otherwise
# refuse images the Rust server decodes, or only warn about them.
Image.MAX_IMAGE_PIXELS = None


def paced(values, interval_ms, context):
    """Yields `values`, sleeping `interval_ms` between them but not before the
    first, and stops as soon as the call ends (client cancel, deadline, server
    stop): grpcio only notices a dead call when we next yield, which could be
    a long sleep away, so the sleep itself must be interruptible."""
    ended = threading.Event()
    if not context.add_callback(ended.set):
        return  # The call is already over.
    interval = interval_ms / 1000
    for index, value in enumerate(values):
        if index and interval and ended.wait(interval):
            return
        if not context.is_active():
            return
        yield value


class Calculator:
    """calculator.Calculator: exact cubes or OUT_OF_RANGE, never wrapped."""

    def __init__(self, pb):
        self._pb = pb

    def Cube(self, request, context):
        number = request.number
        if abs(number) > MAX_CUBE_INPUT:
            context.abort(
                grpc.StatusCode.OUT_OF_RANGE,
                f"the cube of {number} does not fit in int64: "
                f"|number| must be at most {MAX_CUBE_INPUT}",
            )
        return self._pb.CubeResponse(result=number**3)


def check_rules(message, context):
    """Aborts with INVALID_ARGUMENT, naming each broken rule, when `message`
    breaks a `buf.validate` rule of its contract: the official protovalidate
    package reads the same rules the Rust services and the suite read, so
    the peers are an independent implementation of them."""
    import protovalidate  # noqa: PLC0415 (see validator())

    try:
        validator().validate(message)
    except protovalidate.ValidationError as error:
        broken = [f"{v.proto.rule_id}: {v.proto.message}" for v in error.violations]
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "; ".join(broken))


@functools.cache
def validator():
    """protovalidate imports `buf.validate.validate_pb2` when it is first
    imported, which grpcio-tools generates from the `validate.proto` that
    `load_contracts` put on the path: so it is imported only after that."""
    import protovalidate  # noqa: PLC0415

    return protovalidate.Validator()


class NumberStreamer:
    """streaming.NumberStreamer: an inclusive range, validated before the
    first value so a rejected call sends nothing but its status."""

    def __init__(self, pb):
        self._pb = pb

    def StreamNumbers(self, request, context):
        # A reversed range, or one of more than 1,000,000 values, breaks a
        # rule of streaming.proto.
        check_rules(request, context)
        start, end = request.start, request.end
        for value in paced(range(start, end + 1), request.interval_ms, context):
            yield self._pb.NumberResponse(value=value)


class CoreServices:
    """coreservices.CoreServices: one method per RPC pattern."""

    def __init__(self, pb):
        self._pb = pb

    def Ping(self, request, context):
        return self._pb.PingResponse(
            message=request.message, server_time_unix_nanos=time.time_ns()
        )

    def StreamNumbers(self, request, context):
        for value in paced(range(request.count), request.interval_ms, context):
            yield self._pb.NumberMessage(value=value)

    def UploadNumbers(self, request_iterator, context):
        """The running sum is checked after every number, like a checked add,
        so an overflow is reported even if later numbers would bring the sum
        back into range."""
        count = total = low = high = 0
        for message in request_iterator:
            value = message.value
            total += value
            if not INT64_MIN <= total <= INT64_MAX:
                context.abort(
                    grpc.StatusCode.OUT_OF_RANGE,
                    f"the sum overflows int64 at number #{count} ({value})",
                )
            low, high = (value, value) if count == 0 else (min(low, value), max(high, value))
            count += 1
        return self._pb.UploadNumbersResponse(count=count, sum=total, min=low, max=high)

    def Chat(self, request_iterator, context):
        """A generator: grpcio sends each reply before asking the iterator for
        the next request, which is what lets clients work in lockstep."""
        for seq, message in enumerate(request_iterator):
            yield self._pb.ChatMessage(text=message.text, seq=seq, sender="server")


class UploaderService:
    """uploader.UploaderService: counts chunks and drops them, so memory does
    not grow with the upload."""

    def __init__(self, pb):
        self._pb = pb

    def UploadImage(self, request_iterator, context):
        chunks = total_bytes = 0
        for chunk in request_iterator:
            if chunks == MAX_CHUNKS:
                context.abort(
                    grpc.StatusCode.OUT_OF_RANGE,
                    f"more than {MAX_CHUNKS} chunks: total_chunks (int32) cannot count them",
                )
            chunks += 1
            total_bytes += len(chunk.data)
        # Only exabytes could overflow; saturate rather than fail a real upload.
        return self._pb.UploadSummary(total_chunks=chunks, total_bytes=min(total_bytes, INT64_MAX))


def detect_format(data):
    """(enum value name, Pillow format, name for humans), judged by signature
    bytes alone as the contract promises, or None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "IMAGE_FORMAT_PNG", "PNG", "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "IMAGE_FORMAT_JPEG", "JPEG", "JPEG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "IMAGE_FORMAT_GIF", "GIF", "GIF"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "IMAGE_FORMAT_WEBP", "WEBP", "WebP"
    return None


def decode_dimensions(data, pillow_format):
    """(width, height) only if the whole image decodes. Pillow is restricted
    to the detected format so that bytes with a PNG signature are never
    decoded as something else, and LOAD_TRUNCATED_IMAGES stays off so that a
    truncated file is a failure rather than a half-grey image."""
    if pillow_format == "PNG" and not png_is_whole(data):
        return None
    # Pillow shows a GIF whose trailer (0x3B) was cut off; the contract wants
    # the whole file, as libgif and the Rust server do.
    if pillow_format == "GIF" and not data.endswith(b"\x3b"):
        return None
    try:
        with Image.open(io.BytesIO(data), formats=[pillow_format]) as image:
            width, height = image.size
            # Counted the way the Rust server's decoder allocates (one byte a
            # channel; palettes expanded to RGB, or RGBA if transparent and
            # always for GIF), so that both refuse the same images.
            channels = len(image.getbands())
            if image.mode in ("P", "PA"):
                transparent = image.format == "GIF" or image.mode == "PA" or "transparency" in image.info
                channels = 4 if transparent else 3
            if width * height * channels > MAX_DECODE_BYTES:
                return None
            image.load()
            return width, height
    except Exception:  # Pillow raises many types for bad input; all mean "does not decode".
        return None


class ImagemService:
    """mensagem.ImagemService: one description per image, sent as soon as
    that image is processed."""

    def __init__(self, pb):
        self._pb = pb

    def UploadImagem(self, request_iterator, context):
        for index, request in enumerate(request_iterator):
            yield self._describe(request.imagem, index)

    def _describe(self, data, index):
        size = len(data)
        response = self._pb.ImagemResposta(
            byte_count=size, sha256_hex=hashlib.sha256(data).hexdigest(), index=index
        )
        detected = detect_format(data)
        if detected is None:
            response.format = self._pb.IMAGE_FORMAT_UNKNOWN
            response.mensagem = f"Received {size} bytes that are not a recognised image."
            return response
        enum_name, pillow_format, name = detected
        response.format = getattr(self._pb, enum_name)
        dimensions = decode_dimensions(data, pillow_format)
        if dimensions is None:
            response.mensagem = f"Received {size} bytes that look like {name} but do not decode."
        else:
            response.width, response.height = dimensions
            response.mensagem = f"Received a {dimensions[0]}x{dimensions[1]} {name} image of {size} bytes."
        return response


SERVICERS = {
    "calculator": Calculator,
    "streaming": NumberStreamer,
    "coreservices": CoreServices,
    "uploader": UploaderService,
    "mensagem": ImagemService,
    "inference": InferenceMethods,
}


def load_contracts(proto_root):
    """Generates message and service modules from the `.proto` files.
    `grpc.protos_and_services` finds files through sys.path, and registers
    them in the default descriptor pool, which is what reflection serves.
    `buf/validate/validate.proto`, which contracts import for their rules,
    is where `cargo xtask` copies it from the prost-protovalidate-types
    crate."""
    sys.path.append(str(proto_root))
    sys.path.append(str(proto_root / "vendor" / "protovalidate"))
    return {key: grpc.protos_and_services(path) for key, (path, _) in CONTRACTS.items()}


def build_server(proto_root, max_message_size, workers, options=None, interceptors=()):
    """The server with every contract, health and reflection registered.
    `options` maps a contract to keyword arguments for its servicer, e.g.
    {"inference": {"model": path, "intra_threads": 2}}."""
    options = options or {}
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc"),
        interceptors=list(interceptors),
        options=[
            ("grpc.max_receive_message_length", max_message_size),
            ("grpc.max_send_message_length", max_message_size),
            # grpcio turns SO_REUSEPORT on by default, which would let a second
            # server "bind" a busy port silently instead of failing.
            ("grpc.so_reuseport", 0),
        ],
    )
    names = []
    for key, (pb, services) in load_contracts(proto_root).items():
        service = CONTRACTS[key][1]
        getattr(services, f"add_{service}Servicer_to_server")(SERVICERS[key](pb, **options.get(key, {})), server)
        names.append(pb.DESCRIPTOR.services_by_name[service].full_name)

    health_servicer = health.HealthServicer()
    for name in ["", *names]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)

    health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
    reflection.enable_server_reflection([*names, health_name, reflection.SERVICE_NAME], server)
    return server, health_servicer, names


def main():
    default_root = Path(__file__).resolve().parents[3] / "proto"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default="127.0.0.1:50051", help="HOST:PORT; port 0 picks a free one")
    parser.add_argument("--proto-root", type=Path, default=default_root, help="folder holding the .proto files")
    parser.add_argument("--max-message-size", type=int, default=16 * 1024 * 1024, help="bytes, both directions")
    parser.add_argument("--workers", type=int, default=32, help="threads; each open stream holds one")
    parser.add_argument("--shutdown-grace", type=float, default=10.0, help="seconds in-flight calls may run after SIGTERM")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="YOLOv8-format ONNX model for inference")
    parser.add_argument("--intra-threads", type=int, default=0, help="ONNX Runtime intra-op threads; 0: its default")
    security_args = parser.add_argument_group("security (SIGHUP rereads these files)")
    security_args.add_argument("--tls-cert", type=Path, help="PEM certificate chain: serve TLS (with --tls-key)")
    security_args.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    security_args.add_argument("--tls-client-ca", type=Path, help="PEM CA: require client certificates it signed")
    security_args.add_argument("--auth-token-file", type=Path, help="bearer token every call but health must carry")
    security_args.add_argument("--open-reflection", action="store_true", help="reflection answers without the token")
    args = parser.parse_args()
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if args.tls_client_ca and not args.tls_cert:
        parser.error("--tls-client-ca needs --tls-cert")
    missing = [path for path, _ in CONTRACTS.values() if not (args.proto_root / path).is_file()]
    if missing:
        parser.error(f"--proto-root {args.proto_root} lacks {', '.join(missing)}")
    if not args.model.is_file():
        parser.error(f"--model {args.model} is not a file")
    if args.intra_threads < 0:
        parser.error("--intra-threads must be 0 or more")
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    # Installed before "listening" is printed, so that a supervisor that stops
    # us the moment we are up still gets a graceful shutdown.
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    try:
        credentials = Credentials(
            args.tls_cert, args.tls_key, args.tls_client_ca, args.auth_token_file, args.open_reflection
        )
    except (OSError, ValueError) as error:
        parser.error(str(error))
    signal.signal(signal.SIGHUP, lambda *_: credentials.reload())

    options = {"inference": {"model": args.model.resolve(), "intra_threads": args.intra_threads}}
    server, health_servicer, names = build_server(
        args.proto_root.resolve(), args.max_message_size, args.workers, options, [TokenInterceptor(credentials)]
    )
    secure = credentials.server_credentials()
    port = server.add_secure_port(args.addr, secure) if secure else server.add_insecure_port(args.addr)
    host = args.addr.rpartition(":")[0]
    server.start()
    log.info("serving %s", ", ".join(names))
    print(f"listening on {host}:{port}", flush=True)
    stop.wait()

    # NOT_SERVING first, so health watchers and load balancers react while
    # in-flight calls drain; whatever outlives the grace period is cancelled.
    log.info("shutting down: health is NOT_SERVING, draining calls")
    health_servicer.enter_graceful_shutdown()
    server.stop(args.shutdown_grace).wait()
    log.info("stopped")


if __name__ == "__main__":
    main()
