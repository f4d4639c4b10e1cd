"""TLS, client certificates and a bearer token for the Python peers, with
the semantics of `services serve`: health stays open for probes, reflection
needs the token unless told otherwise, a refused call does no work, and
SIGHUP rereads every file, with a failed reload keeping what was loaded."""

import hashlib
import hmac
import logging

import grpc

log = logging.getLogger("peer.security")

HEALTH = "/grpc.health.v1.Health/"
REFLECTION = "/grpc.reflection."


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _token_digest(path):
    token = _read(path).strip()
    if not token:
        raise ValueError(f"the token file {path} is empty")
    return hashlib.sha256(token).digest()


class Credentials:
    def __init__(self, cert=None, key=None, client_ca=None, token_file=None, open_reflection=False):
        self.cert, self.key, self.client_ca = cert, key, client_ca
        self.token_file = token_file
        self.open_reflection = open_reflection
        self._tls = self._tls_config() if cert else None
        self._pending_tls = None
        self._token = _token_digest(token_file) if token_file else None

    def _tls_config(self):
        return grpc.ssl_server_certificate_configuration(
            [(_read(self.key), _read(self.cert))],
            root_certificates=_read(self.client_ca) if self.client_ca else None,
        )

    def reload(self):
        """Rereads the files; on any error nothing changes."""
        try:
            tls = self._tls_config() if self.cert else None
            token = _token_digest(self.token_file) if self.token_file else None
        except Exception as error:  # noqa: BLE001 (any unreadable file)
            log.error("reload failed, keeping the previous credentials: %s", error)
            return
        self._pending_tls, self._token = tls, token
        log.info("reloaded the TLS certificate and the token")

    def _fetch_tls(self):
        # Called by grpcio before each handshake: a new configuration, once.
        pending, self._pending_tls = self._pending_tls, None
        return pending

    def server_credentials(self):
        """Credentials for `add_secure_port`, or None for plaintext."""
        if self._tls is None:
            return None
        return grpc.dynamic_ssl_server_credentials(
            self._tls, self._fetch_tls, require_client_authentication=self.client_ca is not None
        )

    def admits(self, method, metadata):
        expected = self._token
        if expected is None or method.startswith(HEALTH):
            return True
        if self.open_reflection and method.startswith(REFLECTION):
            return True
        value = dict(metadata).get("authorization", "")
        if not value.startswith("Bearer "):
            return False
        presented = hashlib.sha256(value[len("Bearer "):].encode()).digest()
        return hmac.compare_digest(presented, expected)


def _deny(request, context):
    context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")


def _deny_stream(request, context):
    context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
    yield  # a generator, as response-streaming handlers are


class TokenInterceptor(grpc.ServerInterceptor):
    """Refuses a call without the token before its handler runs."""

    def __init__(self, credentials):
        self.credentials = credentials

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        if handler is None or self.credentials.admits(details.method, details.invocation_metadata):
            return handler
        kinds = {
            (False, False): grpc.unary_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler,
        }
        make = kinds[(handler.request_streaming, handler.response_streaming)]
        return make(
            _deny_stream if handler.response_streaming else _deny,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
