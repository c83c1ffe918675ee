"""kafka-python against kafkit's development broker imitating an old release
(`kafkit dev-broker --kafka-version RELEASE`), with kafka-python's `api_version` set to the same
release: it produces (message sets: magic 0 before 0.10, magic 1 on 0.10) with the codecs that
release knew, reads the records back with a plain consumer (assign), then with a group, and
commits.

usage: peer_kafka_python_old.py BOOTSTRAP RELEASE      (RELEASE: 0.9 or 0.10.0, ...)
"""

import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from common import Checks, produced_values

bootstrap, release = sys.argv[1], sys.argv[2]
api_version = tuple(int(p) for p in release.split("."))
c = Checks(f"kafka-python api_version={release}")
run = str(int(time.time() * 1000))
topic = f"peer-old-{release.replace('.', '-')}-{run}"
# lz4 on magic 0 needs the pre-0.10 header checksum quirk kafka-python implements; zstd came in 2.1.
codecs = ["none", "gzip", "snappy"]
PER_CODEC = 10

expected = {}
for codec in codecs:
    p = KafkaProducer(
        bootstrap_servers=bootstrap,
        api_version=api_version,
        acks=1,
        compression_type=None if codec == "none" else codec,
        linger_ms=5,
    )
    futures = [p.send(topic, key=k, value=v, partition=0) for k, v in produced_values("old", codec, PER_CODEC)]
    p.flush(30)
    metas = [f.get(timeout=30) for f in futures]
    p.close(10)
    expected.update(produced_values("old", codec, PER_CODEC))
    c.check(f"produce {PER_CODEC} records with {codec}", len(metas) == PER_CODEC, f"{len(metas)} acknowledged")

# A plain consumer (what SimpleConsumer was): assign and read from the beginning.
tp = TopicPartition(topic, 0)
consumer = KafkaConsumer(
    bootstrap_servers=bootstrap, api_version=api_version, auto_offset_reset="earliest",
    enable_auto_commit=False, consumer_timeout_ms=5000,
)
consumer.assign([tp])
got = {}
deadline = time.time() + 20
while len(got) < len(expected) and time.time() < deadline:
    for records in consumer.poll(timeout_ms=500).values():
        for r in records:
            got[r.key] = r.value
consumer.close()
c.check("assign() reads back every record", got == expected, f"{len(got)} of {len(expected)}")

# A group (0.9 and later): join, read, commit, and find the commit again.
group = f"{topic}-group"
member = KafkaConsumer(
    topic, bootstrap_servers=bootstrap, api_version=api_version, group_id=group,
    auto_offset_reset="earliest", enable_auto_commit=False, session_timeout_ms=10000,
    heartbeat_interval_ms=500,
)
seen = 0
deadline = time.time() + 30
while seen < len(expected) and time.time() < deadline:
    for records in member.poll(timeout_ms=500).values():
        seen += len(records)
c.check("a group member reads every record", seen == len(expected), f"{seen} of {len(expected)}")
member.commit()
committed = member.committed(tp)
member.close()
c.check("commit and committed", committed == len(expected), f"committed {committed}")
c.finish()
