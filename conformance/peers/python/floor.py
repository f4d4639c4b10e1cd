"""The latency floor: a bare ONNX Runtime session, no server in the way.

The conformance suite's latency sweep measures what being a server costs,
as p50(server) - p50(floor). This process is the floor. It loads the model,
letterboxes the image once, and then runs the forward pass alone, in the
measurement windows the suite asks for. It speaks the suite's floor protocol
(`--floor-cmd`), one JSON object per line:

    floor -> suite   {"ready": "<what runs>"}           once, when loaded
    suite -> floor   {"concurrency": C, "window_ms": W}
    floor -> suite   {"latencies_us": [...], "errors": N,
                      "first_error": null, "elapsed_us": T}

For one window, C threads call back to back until W ms have passed. A call
that started before the window closed is waited for and counted, and T runs
until the last thread returns, as the suite does for servers. The floor
exits when its stdin closes.

Sessions follow the Rust service's defaults and perf_analyzer's practice for
a CPU floor: one single-threaded session per core, spinning off, every graph
optimisation on, and each window's threads take whichever session is free;
the time a call waits for one counts, as queueing does in a server.
Inputs and outputs are bound once (IOBinding), so a call copies nothing
between Python and ONNX Runtime: what is timed is the forward pass.
"""

import argparse
import collections
import json
import os
import sys
import threading
import time
from pathlib import Path

import onnxruntime

from inference_methods import DEFAULT_MODEL, DEFAULT_SIZE, decode_rgb, letterbox


def session(model, threads):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])


def bound(sess, image):
    """The session with the image's input tensor and every output bound."""
    inputs = sess.get_inputs()
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        raise ValueError(f"expected one NCHW input, found {[i.shape for i in inputs]}")
    size = inputs[0].shape[2]
    size = size if isinstance(size, int) and size > 0 else DEFAULT_SIZE
    tensor, _, _, _ = letterbox(decode_rgb(image), size)
    binding = sess.io_binding()
    binding.bind_cpu_input(inputs[0].name, tensor)
    for output in sess.get_outputs():
        binding.bind_output(output.name)
    return sess, binding, tensor  # The tensor must outlive the binding.


class Pool:
    """Sessions handed out first come, first served. A session given back
    goes straight to the longest waiter: with a plain queue, the thread that
    gives one back takes it again before a woken waiter runs, and a few
    calls wait for whole windows while the median shows no queueing."""

    def __init__(self, sessions):
        self._free = list(sessions)
        self._waiters = collections.deque()
        self._lock = threading.Lock()

    def get(self):
        with self._lock:
            if self._free and not self._waiters:
                return self._free.pop()
            slot = [threading.Event(), None]
            self._waiters.append(slot)
        slot[0].wait()
        return slot[1]

    def put(self, session):
        with self._lock:
            if self._waiters:
                slot = self._waiters.popleft()
                slot[1] = session
                slot[0].set()
            else:
                self._free.append(session)


def window(pool, concurrency, length):
    closes = time.perf_counter() + length
    latencies, errors, lock = [], [], threading.Lock()

    def worker():
        mine, failed = [], []
        while time.perf_counter() < closes:
            # Waiting for a free session is part of the call, as queueing
            # for one is part of a server's latency.
            started = time.perf_counter_ns()
            sess, binding, tensor = pool.get()
            try:
                sess.run_with_iobinding(binding)
                mine.append((time.perf_counter_ns() - started) // 1000)
            except Exception as error:  # Counted, never fatal, like a server's error status.
                failed.append(str(error))
            finally:
                pool.put((sess, binding, tensor))
        with lock:
            latencies.extend(mine)
            errors.extend(failed)

    started = time.perf_counter_ns()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "latencies_us": latencies,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "elapsed_us": (time.perf_counter_ns() - started) // 1000,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", required=True, type=Path, help="the encoded image every call carries")
    parser.add_argument("--model", default=DEFAULT_MODEL, type=Path)
    parser.add_argument("--sessions", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--intra-threads", type=int, default=1)
    args = parser.parse_args()

    image = args.image.read_bytes()
    pool = Pool(bound(session(args.model, args.intra_threads), image) for _ in range(max(1, args.sessions)))
    sess, binding, tensor = pool.get()
    sess.run_with_iobinding(binding)  # Warm-up: first-run allocations are not the floor.
    pool.put((sess, binding, tensor))

    what = (
        f"onnxruntime {onnxruntime.__version__} {sess.get_providers()[0]}, {args.model.name}, "
        f"{args.sessions} session(s) x {args.intra_threads} thread(s)"
    )
    print(json.dumps({"ready": what}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        answer = window(pool, int(request["concurrency"]), request["window_ms"] / 1000)
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
