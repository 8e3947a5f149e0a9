#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""Daemon fill from a local docker-registry against curl, on loopback.

A ~1 GiB nydus image (nydus-mkimage, compressor none, then zstd) is pushed
into a local docker-registry; the daemon serves its data blob through the
fake device (every READ the kernel would send, 8 in flight) with the registry
backend, cold; curl downloads the same blob. Prints both rates and the ratio
(goal for compressor none: >= 0.9x).

usage: bench-registry-fill.py BUILD_DIR [SIZE_MIB]   (exit 77 when a program is missing)
"""
import hashlib
import os
import random
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "backend"))
import run as harness  # noqa: E402


def make_tree(root, size_mib):
    """Half random, half text: compressible like a real layer, not trivially."""
    os.makedirs(root)
    rnd = random.Random(1)
    words = [b"erofs ", b"nydus ", b"chunk ", b"cache ", b"layer ", b"kernel ", b"{\"k\": 1}, "]
    for i in range(size_mib // 16):
        with open(os.path.join(root, f"f{i:03d}"), "wb") as f:
            if i % 2:
                f.write(rnd.randbytes(16 << 20))
            else:
                f.write(b"".join(rnd.choice(words) for _ in range((16 << 20) // 6))[: 16 << 20])


def main():
    build = sys.argv[1]
    size_mib = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
    mkimage = os.path.join(build, "storage", "builder", "nydus-mkimage")
    fill = os.path.join(build, "tests", "fake", "fake-fill")
    harness.need("docker-registry", "curl")
    e = harness.Env("fill")
    try:
        src = os.path.join(e.tmp, "src")
        make_tree(src, size_mib)
        addr = harness.start_registry(e, auth=False)
        for comp in ("none", "zstd"):
            out = os.path.join(e.tmp, comp)
            os.makedirs(os.path.join(out, "work"))
            blob_id = subprocess.run([mkimage, "-z", comp, "--toc", "-o", out, src], check=True,
                                     capture_output=True, text=True).stdout.split()[-1]
            blob = os.path.join(out, blob_id)
            harness.registry_push(addr, "bench/img", blob, blob_id, auth=False)
            blob_mib = os.path.getsize(blob) / 1048576
            url = f"http://{addr}/v2/bench/img/blobs/sha256:{blob_id}"
            # Warm the registry's page cache for both contenders, then time curl.
            subprocess.run(["curl", "-sS", "-o", "/dev/null", url], check=True)
            t = time.monotonic()
            subprocess.run(["curl", "-sS", "-o", "/dev/null", url], check=True)
            curl_rate = blob_mib / (time.monotonic() - t)
            env = dict(os.environ, FAKE_FILL_WINDOW="8MiB",
                       FAKE_FILL_BACKEND=f"{{type: registry, scheme: http, host: '{addr}', repo: bench/img}}")
            r = subprocess.run([fill, os.path.join(out, "image.boot"), out, blob_id,
                                os.path.join(out, "got.cache"), os.path.join(out, "work")],
                               env=env, capture_output=True, text=True)
            line = [l for l in r.stdout.splitlines() if l.startswith("fake-fill:")]
            if r.returncode != 0 or not line:
                print(r.stdout, r.stderr[-2000:])
                return 1
            secs = float(line[0].split(" s,")[0].split()[-1])
            daemon_rate = blob_mib / secs      # compressed bytes moved per second, like curl
            print(f"compressor {comp:4}: blob {blob_mib:7.1f} MiB  curl {curl_rate:7.1f} MiB/s  "
                  f"daemon {daemon_rate:7.1f} MiB/s of blob ({(os.path.getsize(blob) and 1) * size_mib / secs:7.1f} "
                  f"MiB/s of image)  ratio {daemon_rate / curl_rate:.2f}x")
            os.unlink(os.path.join(out, "got.cache"))
            os.unlink(blob)
    finally:
        e.stop()
        shutil.rmtree(e.tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
