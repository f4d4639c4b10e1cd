# The `services` binary (every seed contract, reflection and health) on a slim
# Debian, as a non-root user, with the ONNX Runtime release tools/onnxruntime.txt
# pins. Build from the repository root:
#
#   docker build -t grpc-contract-services .
#   docker run --rm -p 50051:50051 grpc-contract-services
#
# docker-compose.yml runs it with MinIO. Uploads go to the S3 that
# AWS_ENDPOINT_URL names, else to an embedded S3 in the container's /tmp.

ARG RUST_VERSION=1.95
ARG DEBIAN=trixie

# ONNX Runtime's shared library, out of the `onnxruntime` wheel on PyPI, as
# `cargo xtask onnxruntime` does: PyPI is reachable where ONNX Runtime's own
# downloads may not be, and the Python peers load the same build. The wheel
# holds only libonnxruntime.so.<version>; it gets its plain name here. pip
# picks the wheel of the platform being built for (x86_64 or aarch64).
FROM python:3.11-slim-${DEBIAN} AS onnxruntime
WORKDIR /ort
COPY tools/onnxruntime.txt .
RUN version="$(sed -n 's/^onnxruntime==//p' onnxruntime.txt)" \
    && test -n "$version" \
    && pip download --no-cache-dir --disable-pip-version-check --no-deps --only-binary=:all: \
        --dest wheel "onnxruntime==$version" \
    && python -c "import glob, sys, zipfile; wheel, = glob.glob('wheel/onnxruntime-*.whl'); \
open('libonnxruntime.so', 'wb').write(zipfile.ZipFile(wheel).read('onnxruntime/capi/libonnxruntime.so.' + sys.argv[1]))" \
        "$version" \
    && rm -r wheel

# The release build. .cargo/config.toml gives the one build script that runs
# protoc a protoc on protox (tools/protoc/), which cargo builds here too.
FROM rust:${RUST_VERSION}-slim-${DEBIAN} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --package services \
    && cp target/release/services /usr/local/bin/services

FROM debian:${DEBIAN}-slim
# ca-certificates: the system's CAs, which S3 over https is checked against.
# libstdc++6: ONNX Runtime's C++ runtime (Debian's base has it; named so that
# it stays). Unpinned: the base image's release fixes the versions, and
# pinning them would refuse Debian's security updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libstdc++6 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 services \
    && useradd --system --uid 10001 --gid services --no-create-home --shell /usr/sbin/nologin services
COPY --from=onnxruntime /ort/libonnxruntime.so /opt/onnxruntime/libonnxruntime.so
COPY --from=build /usr/local/bin/services /usr/local/bin/services
# The services load this file themselves, through ort's init_from (an --ort-lib
# flag overrides it). It names the file, not its folder.
ENV ORT_DYLIB_PATH=/opt/onnxruntime/libonnxruntime.so
USER 10001:10001
EXPOSE 50051
ENTRYPOINT ["services"]
CMD ["serve", "--addr", "0.0.0.0:50051"]
