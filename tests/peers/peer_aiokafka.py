"""aiokafka against kafkit's development broker: admin calls, producing with every codec, a
consumer group of two, and reading what kafkit wrote byte for byte.

usage: peer_aiokafka.py BOOTSTRAP WRITTEN_DIR
"""

import asyncio
import os
import sys
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)

from common import Checks, compare_written, load_expected, produced_values

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PER_CODEC = 20

bootstrap, written = sys.argv[1], sys.argv[2]
c = Checks("aiokafka")
run = str(int(time.time() * 1000))
topic = f"peer-aiokafka-{run}"
group = f"{topic}-group"


async def eventually(pred, timeout, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if await pred():
            return True
        await asyncio.sleep(step)
    return await pred()


async def main():
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 3, 1)])

    async def listed():
        return topic in await admin.list_topics()

    c.check("CreateTopics", await eventually(listed, 10), "topic not listed")

    for codec in CODECS:
        p = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            compression_type=None if codec == "none" else codec,
            linger_ms=5,
        )
        await p.start()
        futures = [await p.send(topic, key=k, value=v) for k, v in produced_values("ak", codec, PER_CODEC)]
        metas = await asyncio.gather(*futures)
        await p.stop()
        c.check(f"produce {PER_CODEC} records with {codec}", len(metas) == PER_CODEC, f"{len(metas)} acknowledged")

    expected = {}
    for codec in CODECS:
        expected.update(dict(produced_values("ak", codec, PER_CODEC)))
    members = [
        AIOKafkaConsumer(
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
    for m in members:
        await m.start()
    seen = {}
    assigned = [set(), set()]

    # A record counts as read once its offset is committed. The second member's join starts a
    # rebalance while the first is reading, and a commit in the middle of one is refused: those
    # records are read again from the committed offset after the rebalance.
    refused_by_rebalance = (CommitFailedError, IllegalGenerationError, RebalanceInProgressError, UnknownMemberIdError)

    async def poll_all():
        for i, m in enumerate(members):
            batches = await m.getmany(timeout_ms=200)
            polled = [r for records in batches.values() for r in records]
            if polled:
                try:
                    await m.commit()
                except refused_by_rebalance:
                    polled = []
            for r in polled:
                seen.setdefault(r.key, []).append(r.value)
            assigned[i] = {tp.partition for tp in m.assignment()}
        return len(seen) >= len(expected) and all(assigned) and not (assigned[0] & assigned[1])

    await eventually(poll_all, 60, step=0)
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
    described = await admin.describe_consumer_groups([group])
    # aiokafka answers with the raw DescribeGroups response.
    groups = [g for resp in described for g in resp.groups]
    state, members_n = (groups[0][2], len(groups[0][5])) if groups else (None, 0)
    c.check(
        "DescribeGroups: the group is Stable with 2 members",
        state == "Stable" and members_n == 2,
        f"state {state}, {members_n} members",
    )
    for m in members:
        await m.stop()

    for codec in CODECS:
        want = load_expected(os.path.join(written, f"{codec}.json"))
        t = f"kafkit-written-{codec}"
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        tps = [TopicPartition(t, p) for p in range(3)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        got = {}

        async def done():
            for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                for r in records:
                    got[(tp.partition, r.offset)] = (r.key, r.value, [(n, v) for n, v in r.headers])
            return all([await consumer.position(tp) >= ends[tp] for tp in tps])

        await eventually(done, 30, step=0)
        await consumer.stop()
        compare_written(c, codec, want, got)

    await admin.delete_topics([topic])

    async def gone():
        return topic not in await admin.list_topics()

    c.check("DeleteTopics", await eventually(gone, 10), "topic still listed")
    await admin.close()


asyncio.run(main())
c.finish()
