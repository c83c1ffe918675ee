"""confluent-kafka (librdkafka) against kafkit's development broker: admin calls, producing
with every codec, a consumer group of two, and reading what kafkit wrote byte for byte.

usage: peer_confluent_kafka.py BOOTSTRAP WRITTEN_DIR
"""

import os
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition, OFFSET_BEGINNING
from confluent_kafka.admin import AdminClient, NewTopic

from common import Checks, compare_written, load_expected, produced_values, wait_until

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PER_CODEC = 20

bootstrap, written = sys.argv[1], sys.argv[2]
c = Checks("confluent-kafka")
run = str(int(time.time() * 1000))
topic = f"peer-confluent-{run}"
group = f"{topic}-group"
base = {"bootstrap.servers": bootstrap, "broker.address.family": "v4"}

admin = AdminClient(base)
for t, f in admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)]).items():
    f.result(15)
c.check(
    "CreateTopics",
    wait_until(lambda: topic in admin.list_topics(timeout=10).topics, 10),
    "topic not listed",
)

for codec in CODECS:
    p = Producer({**base, "acks": "all", "compression.type": codec, "linger.ms": 5})
    errors = []
    acked = []

    def report(err, msg):
        (errors if err else acked).append(err or msg)

    for k, v in produced_values("ck", codec, PER_CODEC):
        p.produce(topic, key=k, value=v, on_delivery=report)
    left = p.flush(30)
    c.check(
        f"produce {PER_CODEC} records with {codec}",
        left == 0 and len(acked) == PER_CODEC and not errors,
        f"{len(acked)} acknowledged, errors {errors[:3]}, {left} left",
    )

expected = {}
for codec in CODECS:
    expected.update(dict(produced_values("ck", codec, PER_CODEC)))
members = [
    Consumer(
        {
            **base,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 500,
        }
    )
    for _ in range(2)
]
for m in members:
    m.subscribe([topic])
seen = {}
assigned = [set(), set()]


# A record counts as read once its offset is committed. The second member's join starts a
# rebalance while the first is reading, and a commit in the middle of one is refused: that record
# is read again from the committed offset after the rebalance.
REFUSED_BY_REBALANCE = {
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError._ASSIGNMENT_LOST,
}


def poll_all():
    for i, m in enumerate(members):
        msg = m.poll(0.1)
        if msg is not None and not msg.error():
            try:
                m.commit(message=msg, asynchronous=False)
                seen.setdefault(msg.key(), []).append(msg.value())
            except KafkaException as e:
                if e.args[0].code() not in REFUSED_BY_REBALANCE:
                    raise
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
d = admin.describe_consumer_groups([group])[group].result(15)
c.check(
    "DescribeGroups: the group is Stable with 2 members",
    str(d.state).endswith("STABLE") and len(d.members) == 2,
    f"state {d.state}, {len(d.members)} members",
)
listed = [g.group_id for g in admin.list_consumer_groups().result(15).valid]
c.check("ListGroups lists the group", group in listed, f"{listed}")
for m in members:
    m.close()

for codec in CODECS:
    want = load_expected(os.path.join(written, f"{codec}.json"))
    t = f"kafkit-written-{codec}"
    consumer = Consumer({**base, "group.id": f"{topic}-reader-{codec}", "enable.auto.commit": False})
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for p in range(3)])
    ends = {p: consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1] for p in range(3)}
    got = {}

    def done():
        msg = consumer.poll(0.2)
        if msg is not None and not msg.error():
            headers = [(n, v) for n, v in (msg.headers() or [])]
            got[(msg.partition(), msg.offset())] = (msg.key(), msg.value(), headers)
        return sum(1 for (p, o) in got) >= sum(ends.values())

    wait_until(done, 30, step=0)
    consumer.close()
    compare_written(c, codec, want, got)

for t, f in admin.delete_topics([topic]).items():
    f.result(15)
c.check(
    "DeleteTopics",
    wait_until(lambda: topic not in admin.list_topics(timeout=10).topics, 10),
    "topic still listed",
)
c.finish()
