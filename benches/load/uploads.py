#!/usr/bin/env python3
"""Writes N FileUploader calls, one a line, for `conformance load --data-file`,
and the SHA-256 each object must read back as.

usage: uploads.py N SIZE_BYTES PREFIX CALLS.jsonl EXPECTED.txt
Each call uploads SIZE_BYTES of its own bytes under PREFIX/upload-<n>, in
64 KiB chunks. EXPECTED.txt gets one "<sha256>  <key>" line per call.
"""
import base64
import hashlib
import json
import random
import sys

count, size, prefix, calls_path, expected_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
CHUNK = 64 * 1024
with open(calls_path, "w") as calls, open(expected_path, "w") as expected:
    for n in range(count):
        key = f"{prefix}/upload-{n}"
        data = random.Random(n).randbytes(size)
        chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
        requests = [{"filename": key, "chunk": base64.b64encode(chunk).decode()} for chunk in chunks]
        calls.write(json.dumps(requests) + "\n")
        expected.write(f"{hashlib.sha256(data).hexdigest()}  {key}\n")
