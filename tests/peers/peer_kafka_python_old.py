"""kafka-python against kafkit's development broker imitating a release
(`kafkit dev-broker --kafka-version RELEASE`), with kafka-python's `api_version` set to the same
release. What the release had, it must do; run by .ci/peers for every profile:
- produce with every codec the release knew (message sets: magic 0 before 0.10, magic 1 on
  0.10.x, record batches from 0.11; lz4 from 0.10.0 (see below), zstd from 2.1), acks=1;
- read everything back with a plain consumer (assign: what SimpleConsumer was), byte for byte;
- commit an offset and fetch it back (from 0.8.1: OffsetCommit v0, ZooKeeper offsets, on 0.8.1;
  v1 through the coordinator from 0.8.2; 0.8.0 had no offsets API and kafka-python refuses);
- join a group and read from the committed offset (from 0.9: the group APIs).

usage: peer_kafka_python_old.py BOOTSTRAP RELEASE     (RELEASE: a profile name: 0.8.0, 0.8.1,
                                                       0.8.2, 0.9, 0.10.0, 0.10.1, 0.10.2, 0.11,
                                                       1, 2, 3, 4)
"""

import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from common import Checks, produced_values

bootstrap, release = sys.argv[1], sys.argv[2]
# kafka-python's api_version keys (kafka/protocol/broker_api_versions.py): three parts for the
# 0.8 and 0.10 lines, two for the others.
parts = tuple(int(p) for p in release.split("."))
api_version = parts if parts[:2] in ((0, 8), (0, 10)) else (parts + (0,))[:2]
c = Checks(f"kafka-python api_version={api_version}")
run = str(int(time.time() * 1000))
topic = f"peer-old-{release.replace('.', '-')}-{run}"
codecs = ["none", "gzip", "snappy"]
# lz4 from 0.10.0 only here: kafka-python 2.3.3 pinned to 0.8.2 or 0.9 never sends an lz4
# Produce (its producer stalls before the request leaves; seen 2026-12-07), so lz4 in magic 0
# (0.8.2, 0.9) is covered by kafkit's own producer_legacy.rs only.
if api_version >= (0, 10, 0):
    codecs.append("lz4")
if api_version >= (2, 1):
    codecs.append("zstd")
PER_CODEC = 10

expected = []
for codec in codecs:
    p = KafkaProducer(
        bootstrap_servers=bootstrap,
        api_version=api_version,
        acks=1,
        compression_type=None if codec == "none" else codec,
        linger_ms=5,
    )
    values = produced_values("old", codec, PER_CODEC)
    futures = [p.send(topic, key=k, value=v, partition=0) for k, v in values]
    p.flush(30)
    try:
        offsets = [f.get(timeout=30).offset for f in futures]
    except Exception as e:  # the check names the failure
        offsets = []
        print(f"[{c.client}] produce with {codec}: {e!r}", flush=True)
    p.close(10)
    expected.extend(values)
    c.check(f"produce {PER_CODEC} records with {codec}", len(offsets) == PER_CODEC, f"{len(offsets)} acknowledged")

# A plain consumer: assign and read from the beginning, in order.
tp = TopicPartition(topic, 0)
group = f"{topic}-group" if api_version >= (0, 8, 1) else None
consumer = KafkaConsumer(
    bootstrap_servers=bootstrap, api_version=api_version, auto_offset_reset="earliest",
    enable_auto_commit=False, group_id=group,
)
consumer.assign([tp])
got = []
deadline = time.time() + 15
while len(got) < len(expected) and time.time() < deadline:
    for records in consumer.poll(timeout_ms=200).values():
        got.extend((r.key, r.value) for r in records)
c.check("assign() reads back every record, in order", got == expected, f"{len(got)} of {len(expected)}")

# Offsets: commit and fetch back (kafka-python needs 0.8.1 for the offset APIs).
half = len(expected) // 2
if group is not None:
    consumer.commit({tp: OffsetAndMetadata(half, "peer", -1)})
    committed = consumer.committed(tp)
    c.check("commit and fetch an offset", committed == half, f"committed {committed}")
consumer.close()

# A group (0.9 and later): join and read from the committed offset.
if api_version >= (0, 9):
    member = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, api_version=api_version, group_id=group,
        auto_offset_reset="earliest", enable_auto_commit=False, session_timeout_ms=10000,
        heartbeat_interval_ms=500,
    )
    seen = []
    deadline = time.time() + 20
    while len(seen) < len(expected) - half and time.time() < deadline:
        for records in member.poll(timeout_ms=200).values():
            seen.extend((r.key, r.value) for r in records)
    c.check(
        "a group member reads from the committed offset", seen == expected[half:],
        f"{len(seen)} of {len(expected) - half}",
    )
    c.check("the member was assigned the partition", tp in member.assignment(), f"{member.assignment()}")
    member.close()
c.finish()
