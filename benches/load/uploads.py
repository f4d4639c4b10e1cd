#!/usr/bin/env python3
"""Writes N FileUploader calls, one a line, for `conformance load --data-file`,
and the SHA-256 each object must read back as; then reads them back.

usage: uploads.py N SIZE_BYTES PREFIX CALLS.jsonl EXPECTED.txt
       uploads.py verify EXPECTED.txt FOLDER
Each call uploads SIZE_BYTES of its own bytes under PREFIX/upload-<n>, in
64 KiB chunks. EXPECTED.txt gets one "<sha256>  <key>" line per call.
`verify` reads every expected key under FOLDER (a bucket's folder of an
s3s-fs store) and fails unless each object present is whole.
"""
import base64
import hashlib
import json
import random
import sys

if sys.argv[1] == "verify":
    import pathlib

    folder = pathlib.Path(sys.argv[3])
    present = whole = 0
    for line in open(sys.argv[2]):
        digest, key = line.split()
        path = folder / key
        if path.exists():
            present += 1
            actual = hashlib.sha256(path.read_bytes()).hexdigest()
            if actual == digest:
                whole += 1
            else:
                print(f"{key}: {path.stat().st_size} bytes, not the upload (sha256 {actual})")
    print(f"{present} objects present, {whole} of them whole")
    sys.exit(0 if present == whole else 1)

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
