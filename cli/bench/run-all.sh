#!/bin/sh
# The client benchmark matrix of BENCHMARKS.md: every workload, kafkit then rust-rdkafka, one
# `kafkit bench` per row (each starts its own development broker unless -b/KAFKA_BOOTSTRAP or
# --broker mock says otherwise). Prints every result line on stdout.
#
#   cargo build --release -p kafkit-cli --features rdkafka
#   cli/bench/run-all.sh                      # the matrix once
#   REPEAT=2 cli/bench/run-all.sh             # every row twice (spread on a noisy machine)
#   cli/bench/run-all.sh --broker mock        # extra arguments go to every command
#
# KAFKIT selects the binary (default: target/release/kafkit next to this script's workspace).
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
kafkit=${KAFKIT:-$here/target/release/kafkit}
repeat=${REPEAT:-1}

run() {
    i=0
    while [ "$i" -lt "$repeat" ]; do
        echo "# kafkit bench $*" >&2
        "$kafkit" bench "$@"
        i=$((i + 1))
    done
}

# Produce as fast as the client takes records: value size x acks (acks=all with idempotence).
for size in 100 1000 10000; do
    for acks in 1 all; do
        run produce --size "$size" --acks "$acks" "$@"
    done
done
# Each client at its own defaults (librdkafka's 1,000,000-byte batches, kafkit's Java ones).
for acks in 1 all; do
    run produce --size 100 --acks "$acks" --defaults own "$@"
done
# Compression (acks=1).
for size in 100 1000; do
    for codec in lz4 zstd; do
        run produce --size "$size" --compression "$codec" "$@"
    done
done
# linger.ms 0 (the rows above use 5).
for size in 100 1000; do
    run produce --size "$size" --linger-ms 0 "$@"
done
# Produce latency at a fixed offered rate (10,000 records/s for 10 s), linger 5 and 0 ms.
for linger in 5 0; do
    for acks in 1 all; do
        run produce --size 100 --acks "$acks" --linger-ms "$linger" --rate 10000 --records 100000 "$@"
    done
done
# Consume a topic filled beforehand (300 MB of values, so each run lasts long enough to measure).
run consume --size 100 --records 3000000 "$@"
run consume --size 1000 --records 300000 "$@"
run consume --size 10000 --records 30000 "$@"
# End-to-end latency at 10,000 records/s for 10 s, linger 5 and 0 ms.
for linger in 5 0; do
    run e2e --size 100 --linger-ms "$linger" --rate 10000 --records 100000 "$@"
done
