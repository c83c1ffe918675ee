"""Shared by the third-party peer scripts of .ci/peers: checks that count and print, Java's
murmur2 partitioner, and the expectations kafkit's writer printed (tests/peers/kafkit_writer.rs).

Every script prints one line per check ("ok ..." or "FAIL ...") and ends with
"N passed, M failed"; it exits non-zero when any check failed.
"""

import json
import sys
import time


class Checks:
    def __init__(self, client):
        self.client = client
        self.passed = 0
        self.failed = 0

    def check(self, what, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"[{self.client}] ok   {what}", flush=True)
        else:
            self.failed += 1
            print(f"[{self.client}] FAIL {what}: {detail}", flush=True)
        return ok

    def finish(self):
        print(f"[{self.client}] {self.passed} passed, {self.failed} failed", flush=True)
        sys.exit(1 if self.failed else 0)


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (seed 0x9747b28c) as the Java client computes it, as a signed 32-bit int."""
    m = 0x5BD1E995
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    i = 0
    while length - i >= 4:
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
        i += 4
    rest = length - i
    if rest == 3:
        h ^= data[i + 2] << 16
    if rest >= 2:
        h ^= data[i + 1] << 8
    if rest >= 1:
        h ^= data[i]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def java_partition(key: bytes, partitions: int) -> int:
    """The partition Java's default partitioner picks for a non-null key."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def load_expected(path):
    """kafkit's writer output: {(partition, offset): (key, value, headers)} with bytes or None."""
    with open(path) as f:
        rows = json.load(f)
    out = {}
    for r in rows:
        key = None if r["key"] is None else bytes.fromhex(r["key"])
        value = None if r["value"] is None else bytes.fromhex(r["value"])
        headers = [(n, bytes.fromhex(v)) for n, v in r["headers"]]
        out[(r["partition"], r["offset"])] = (key, value, headers)
    return out


def compare_written(checks, codec, expected, got, partitions=3):
    """Checks records read from kafkit's topic against what kafkit wrote.

    `got` maps (partition, offset) to (key, value, headers) with headers a list of
    (str, bytes) in order, None for Kafka nulls."""
    checks.check(
        f"read kafkit's {codec} topic: {len(expected)} records at the offsets kafkit reported",
        set(got) == set(expected),
        f"missing {sorted(set(expected) - set(got))[:5]}, unexpected {sorted(set(got) - set(expected))[:5]}",
    )
    diffs = [
        (po, expected[po], got.get(po))
        for po in sorted(expected)
        if po in got and got[po] != expected[po]
    ]
    checks.check(
        f"kafkit's {codec} records byte for byte (keys, values, headers, null vs empty)",
        not diffs,
        "; ".join(f"{po}: wrote {e!r:.120} read {g!r:.120}" for po, e, g in diffs[:3]),
    )
    misplaced = [
        (po, key)
        for po, (key, _, _) in expected.items()
        if key is not None and java_partition(key, partitions) != po[0]
    ]
    checks.check(
        f"kafkit placed its {codec} keyed records as Java's murmur2 partitioner does",
        not misplaced,
        f"{misplaced[:3]}",
    )


def produced_values(client, codec, n):
    """The keyed records a peer produces with `codec`: [(key, value)]."""
    return [
        (f"{client}-{codec}-k{i}".encode(), f"{client}-{codec}-v{i}".encode()) for i in range(n)
    ]


def wait_until(pred, timeout, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()
