#!/usr/bin/env bash
# The load figures of BENCHMARKS.md: the load generator's ceiling beside
# h2load, the soak runs, and the fault runs, against release builds on
# loopback.
#
#   benches/load/soak.sh ceiling            # unary Ping: h2load, then conformance load, same server
#   benches/load/soak.sh unary  rust|python RATE[,RATE...]
#   benches/load/soak.sh chat   rust|python STREAMS
#   benches/load/soak.sh uploads            # 100 concurrent uploads, read back (our services only)
#   benches/load/soak.sh fault  unary|uploads
#
# Needs `cargo build --release -p services -p conformance`, h2load (Debian
# nghttp2-client) and the Python peers' venv (`cargo xtask test` makes it).
# Writes into target/soak/. Server RSS is sampled every second into rss.log
# beside each run's report, and summed up as before, peak (the kernel's
# high-water mark), 5 s after and 30 s after.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=target/soak
mkdir -p "$OUT"
LOAD=target/release/conformance
SERVICES=target/release/services
PYTHON=tools/venv/bin/python
SECS=${SECS:-30}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_server rust|python PORT [extra args...]: starts it, waits until it
# accepts connections, and sets SERVER_PID.
start_server() {
    local which=$1 port=$2; shift 2
    case $which in
        rust) $SERVICES serve --addr "127.0.0.1:$port" --no-inference "$@" >"$OUT/server-$which.log" 2>&1 & ;;
        python) $PYTHON conformance/peers/python/server.py --addr "127.0.0.1:$port" "$@" >"$OUT/server-$which.log" 2>&1 & ;;
    esac
    SERVER_PID=$!
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.1; done
    sleep 1
}

rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
peak_rss() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

# sample PID FILE: appends "seconds rss_kib" every second until killed.
sample() {
    local start=$SECONDS
    while kill -0 "$1" 2>/dev/null; do echo "$((SECONDS - start)) $(rss "$1")" >>"$2"; sleep 1; done
}

# measured NAME COMMAND...: runs a load command while sampling the server's
# RSS, then reports RSS before, at its peak during, 5 s after and 30 s after.
measured() {
    local name=$1; shift
    local dir="$OUT/$name"; rm -rf "$dir"; mkdir -p "$dir"
    local before; before=$(rss "$SERVER_PID")
    sample "$SERVER_PID" "$dir/rss.log" & local sampler=$!
    "$@" --out "$dir" | tee "$dir/stdout.txt" || true
    # The kernel's high-water mark: a run shorter than the sampling still
    # shows its peak.
    local peak; peak=$(peak_rss "$SERVER_PID")
    sleep 5; local after5; after5=$(rss "$SERVER_PID")
    sleep 25; local after30; after30=$(rss "$SERVER_PID")
    kill "$sampler"
    echo "$name: server RSS before $((before / 1024)) MiB, peak during $((peak / 1024)) MiB, 5 s after $((after5 / 1024)) MiB, 30 s after $((after30 / 1024)) MiB" | tee -a "$dir/stdout.txt"
}

case ${1:-} in
ceiling)
    port=$(free_port); start_server rust "$port"; trap 'kill $SERVER_PID' EXIT
    url=http://127.0.0.1:$port
    # Ping{message: "hi"} behind gRPC's 5-byte prefix.
    printf '\x00\x00\x00\x00\x04\x0a\x02hi' >"$OUT/ping.bin"
    echo "--- one call through nghttp, to see grpc-status 0 in the trailers"
    nghttp -v -H 'content-type: application/grpc' -H 'te: trailers' -d "$OUT/ping.bin" \
        "$url/coreservices.CoreServices/Ping" | grep -E 'grpc-status|:status' || true
    # Both on one thread (h2load -t 1, conformance load --threads 1), each
    # shape three times, the two tools taking turns on the same server.
    for round in 1 2 3; do
        for shape in "1 100" "2 128" "4 64" "8 32" "16 16"; do
            set -- $shape; c=$1; m=$2
            h2=$(h2load -D 8 -c "$c" -m "$m" -t 1 -d "$OUT/ping.bin" \
                -H 'content-type: application/grpc' -H 'te: trailers' \
                "$url/coreservices.CoreServices/Ping" | awk '/^finished in/ {print $4}')
            ours=$($LOAD load --threads 1 --target "$url" --call coreservices.CoreServices/Ping --data '{"message": "hi"}' \
                --connections "$c" --concurrency $((c * m)) --ramp 2 --duration 8 --out "$OUT/ceiling-$c" \
                | awk '$1 == "concurrency" && $3 ~ /^[0-9]+$/ {print $4}')
            echo "round $round, $c connection(s) x $m streams: h2load $h2 req/s, conformance load $ours calls/s, ratio $(python3 -c "print(f'{$ours / $h2:.2f}')")"
        done
    done | tee "$OUT/ceiling.txt"
    ;;
unary)
    which=$2; rates=$3
    port=$(free_port)
    [ "$which" = python ] && extra=(--workers 64) || extra=()
    start_server "$which" "$port" "${extra[@]}"; trap 'kill $SERVER_PID' EXIT
    measured "unary-$which" $LOAD load --threads 1 --target "http://127.0.0.1:$port" --call coreservices.CoreServices/Ping \
        --data '{"message": "hi"}' --rps "$rates" --connections 4 --ramp 3 --duration "$SECS"
    ;;
chat)
    which=$2; streams=$3
    port=$(free_port)
    # grpcio's synchronous server holds a thread for every open stream.
    [ "$which" = python ] && extra=(--workers $((streams + 64))) || extra=()
    start_server "$which" "$port" "${extra[@]}"; trap 'kill $SERVER_PID' EXIT
    # 31 messages a second apart: each stream talks for 30 s.
    data=$(python3 -c 'import json; print(json.dumps([{"text": f"message {i}"} for i in range(31)]))')
    measured "chat-$which" $LOAD load --target "http://127.0.0.1:$port" --call coreservices.CoreServices/Chat \
        --data "$data" --message-interval-ms 1000 --timeout-secs 120 \
        --connections 10 --concurrency "$streams" --count "$streams"
    ;;
uploads)
    port=$(free_port); s3=$(mktemp -d)
    python3 benches/load/uploads.py 100 $((1024 * 1024)) soak "$OUT/uploads.jsonl" "$OUT/uploads.sha256"
    start_server rust "$port" --s3-data-dir "$s3"; trap 'kill $SERVER_PID; rm -rf $s3' EXIT
    measured uploads $LOAD load --target "http://127.0.0.1:$port" --call uploader.FileUploader/Upload \
        --data-file "$OUT/uploads.jsonl" --concurrency 100 --count 100 --timeout-secs 120
    echo "--- reading every object back from the server's S3 folder"
    python3 benches/load/uploads.py verify "$OUT/uploads.sha256" "$s3/uploads"
    ;;
fault)
    case $2 in
    unary)
        $LOAD load --target-cmd "$SERVICES serve --addr {addr} --no-inference" \
            --call coreservices.CoreServices/Ping --data '{"message": "hi"}' \
            --rps 2000 --connections 4 --duration 30 --restart-after 10 --out "$OUT/fault-unary"
        ;;
    uploads)
        s3=$(mktemp -d); trap 'rm -rf $s3' EXIT
        python3 benches/load/uploads.py 100 $((1024 * 1024)) fault "$OUT/fault.jsonl" "$OUT/fault.sha256"
        $LOAD load --target-cmd "$SERVICES serve --addr {addr} --no-inference --s3-data-dir $s3" \
            --call uploader.FileUploader/Upload --data-file "$OUT/fault.jsonl" \
            --concurrency 20 --duration 20 --restart-after 8 --timeout-secs 120 --out "$OUT/fault-uploads" || true
        echo "--- every object in S3 must be one whole upload"
        python3 benches/load/uploads.py verify "$OUT/fault.sha256" "$s3/uploads"
        ;;
    esac
    ;;
*)
    sed -n '2,13p' "$0"; exit 2 ;;
esac
