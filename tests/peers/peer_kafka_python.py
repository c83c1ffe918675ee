"""kafka-python against kafkit's development broker: admin calls, producing with every codec
it supports, a consumer group of two, and reading what kafkit wrote byte for byte.

usage: peer_kafka_python.py BOOTSTRAP WRITTEN_DIR
(WRITTEN_DIR holds kafkit's writer output per codec: CODEC.json for topic kafkit-written-CODEC)
"""

import os
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)

from common import Checks, compare_written, load_expected, produced_values, wait_until

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PER_CODEC = 20

bootstrap, written = sys.argv[1], sys.argv[2]
c = Checks("kafka-python")
run = str(int(time.time() * 1000))
topic = f"peer-kafka-python-{run}"
group = f"{topic}-group"

admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
admin.create_topics([NewTopic(topic, 3, 1)])
c.check("CreateTopics", topic in admin.list_topics(), "topic not listed after creating it")

producer_counts = {}
for codec in CODECS:
    p = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        compression_type=None if codec == "none" else codec,
        linger_ms=5,
    )
    futures = [p.send(topic, key=k, value=v) for k, v in produced_values("kp", codec, PER_CODEC)]
    p.flush(30)
    metas = [f.get(timeout=30) for f in futures]
    p.close(10)
    producer_counts[codec] = len(metas)
    c.check(f"produce {PER_CODEC} records with {codec}", len(metas) == PER_CODEC, f"{len(metas)} acknowledged")

# A group of two: both members poll in turn until every record was read once.
expected = {}
for codec in CODECS:
    for k, v in produced_values("kp", codec, PER_CODEC):
        expected[k] = v
members = [
    KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=10000,
        heartbeat_interval_ms=500,
    )
    for _ in range(2)
]
seen = {}
assigned = [set(), set()]


# A record counts as read once its offset is committed. The second member's join starts a
# rebalance while the first is reading, and a commit in the middle of one is refused (Kafka answers
# REBALANCE_IN_PROGRESS while the group completes a rebalance, ILLEGAL_GENERATION after it): those
# records are read again from the committed offset after the rebalance, as the application
# would see them.
REFUSED_BY_REBALANCE = (CommitFailedError, IllegalGenerationError, RebalanceInProgressError, UnknownMemberIdError)


def poll_all():
    for i, m in enumerate(members):
        polled = [r for records in m.poll(timeout_ms=200).values() for r in records]
        if polled:
            try:
                m.commit()
            except REFUSED_BY_REBALANCE:
                polled = []
        for r in polled:
            seen.setdefault(r.key, []).append(r.value)
        assigned[i] = {tp.partition for tp in m.assignment()}
    return len(seen) >= len(expected) and all(assigned) and not (assigned[0] & assigned[1])


wait_until(poll_all, 60, step=0)
dups = {k: v for k, v in seen.items() if len(v) > 1}
c.check(
    f"group of two read all {len(expected)} records (every codec) once",
    set(seen) == set(expected) and not dups and all(seen[k][0] == v for k, v in expected.items()),
    f"read {len(seen)}, duplicated {len(dups)}",
)
c.check(
    "both members were assigned partitions, disjointly",
    all(assigned) and not (assigned[0] & assigned[1]),
    f"assignments {assigned}",
)
described = admin.describe_consumer_groups([group])
d = described[0]
c.check(
    "DescribeGroups: the group is Stable with 2 members",
    d.state == "Stable" and len(d.members) == 2,
    f"state {d.state}, {len(d.members)} members",
)
listed = [g[0] for g in admin.list_consumer_groups()]
c.check("ListGroups lists the group", group in listed, f"{listed}")
offsets = admin.list_consumer_group_offsets(group)
c.check(
    "OffsetFetch (admin): committed offsets sum to the records produced",
    sum(o.offset for o in offsets.values()) == len(expected),
    f"{offsets}",
)
for m in members:
    m.close()

# What kafkit wrote, with every codec.
for codec in CODECS:
    path = os.path.join(written, f"{codec}.json")
    want = load_expected(path)
    t = f"kafkit-written-{codec}"
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    tps = [TopicPartition(t, p) for p in range(3)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    ends = consumer.end_offsets(tps)
    got = {}

    def done():
        for tp, records in consumer.poll(timeout_ms=200).items():
            for r in records:
                got[(tp.partition, r.offset)] = (r.key, r.value, [(n, v) for n, v in r.headers])
        return all(consumer.position(tp) >= ends[tp] for tp in tps)

    wait_until(done, 30, step=0)
    consumer.close()
    compare_written(c, codec, want, got)

admin.delete_topics([topic])
c.check(
    "DeleteTopics",
    wait_until(lambda: topic not in admin.list_topics(), 10),
    "topic still listed",
)
admin.close()
c.finish()
