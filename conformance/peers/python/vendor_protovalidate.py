"""Fetch buf/validate/validate.proto for a build without cargo.

The contracts import `buf/validate/validate.proto`. `cargo xtask` copies it
out of the `prost-protovalidate-types` crate into proto/vendor/protovalidate/,
where the peers look for it (server.py adds that folder to sys.path). The
peers' container image has no cargo, so this script does the same from the
crate file on crates.io: the version Cargo.lock pins, checked against the
SHA-256 that Cargo.lock records for it.

    python vendor_protovalidate.py --lock Cargo.lock --out proto/vendor/protovalidate
"""

import argparse
import hashlib
import io
import re
import sys
import tarfile
import urllib.request
from pathlib import Path

CRATE = "prost-protovalidate-types"
FILE = "buf/validate/validate.proto"
DOWNLOAD = "https://static.crates.io/crates/{name}/{name}-{version}.crate"


def pinned(lock_text, name):
    """(version, sha256) of `name` in a Cargo.lock."""
    for block in lock_text.split("[[package]]"):
        if re.search(rf'^name = "{re.escape(name)}"$', block, re.M):
            version = re.search(r'^version = "([^"]+)"$', block, re.M)
            checksum = re.search(r'^checksum = "([0-9a-f]{64})"$', block, re.M)
            if version and checksum:
                return version.group(1), checksum.group(1)
    raise SystemExit(f"{name} with a checksum is not in the lock file")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lock", type=Path, required=True, help="the workspace's Cargo.lock")
    parser.add_argument("--out", type=Path, required=True, help="include root to write buf/validate/validate.proto under")
    args = parser.parse_args()

    version, checksum = pinned(args.lock.read_text(), CRATE)
    url = DOWNLOAD.format(name=CRATE, version=version)
    with urllib.request.urlopen(url, timeout=60) as response:
        crate = response.read()
    actual = hashlib.sha256(crate).hexdigest()
    if actual != checksum:
        raise SystemExit(f"{url}: SHA-256 {actual}, but Cargo.lock says {checksum}")
    member = f"{CRATE}-{version}/proto/{FILE}"
    with tarfile.open(fileobj=io.BytesIO(crate), mode="r:gz") as archive:
        source = archive.extractfile(member)
        if source is None:
            raise SystemExit(f"{url} holds no {member}")
        target = args.out / FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read())
    print(f"{target} from {CRATE} {version}", file=sys.stderr)


if __name__ == "__main__":
    main()
