//! [`ProducerCore`]'s command contract without a cluster: refusals, events named by op,
//! and `abort`.

use std::time::Instant;

use super::{ProduceError, ProducerCore, ProducerEvent, ProducerRecord, SendStatus};
use crate::config::ProducerConfig;
use crate::network::{ClientCore, NetOptions, Output};
use crate::OpId;

fn core(buffer_memory: u64) -> ProducerCore {
    let mut config = ProducerConfig::builder()
        .bootstrap_servers("broker:9092")
        .build()
        .expect("config");
    config.buffer_memory = buffer_memory;
    ProducerCore::new(config, NetOptions::new(vec![("broker".into(), 9092)])).expect("core")
}

fn events(core: &mut ProducerCore) -> Vec<ProducerEvent> {
    std::iter::from_fn(|| core.poll_output())
        .filter_map(|o| match o {
            Output::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}

#[test]
fn a_record_without_a_timestamp_needs_the_wall_clock() {
    let mut core = core(1 << 20);
    let now = Instant::now();
    let err = core
        .send(Some(OpId(1)), ProducerRecord::new("t").value("v"), now)
        .unwrap_err();
    assert_eq!(err, ProduceError::NoWallClock);
    assert!(err.to_string().contains("handle_wall_clock"), "{err}");
    assert_eq!(core.pending_records(), 0, "refused, not queued");
    // The shared account got the memory back.
    assert_eq!(core.shared().available_bytes(), 1 << 20);
    // A record with its own timestamp needs no wall clock.
    let record = ProducerRecord::new("t").value("v").timestamp(5);
    assert_eq!(
        core.send(Some(OpId(2)), record, now),
        Ok(SendStatus::Accepted)
    );
    // Once the wall clock is fed, records without a timestamp are stamped.
    core.handle_wall_clock(now, 1_700_000_000_000);
    let record = ProducerRecord::new("t").value("v");
    assert_eq!(
        core.send(Some(OpId(3)), record, now),
        Ok(SendStatus::Accepted)
    );
    assert_eq!(core.pending_records(), 2);
    // The fast path refuses the same way; the refusal is reported with the record's op.
    let mut fresh = self::core(1 << 20);
    let record = ProducerRecord::new("t").value("v");
    let size = fresh.shared().check_record(&record).expect("fits");
    assert!(fresh.shared().try_reserve(size));
    fresh.send_reserved_all([(Some(OpId(4)), record, size)], now);
    let reported: Vec<_> = events(&mut fresh)
        .into_iter()
        .flat_map(|e| match e {
            ProducerEvent::Delivered(d) => d.iter().collect::<Vec<_>>(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(reported, [(OpId(4), Err(ProduceError::NoWallClock))]);
    assert_eq!(fresh.shared().available_bytes(), 1 << 20);
}

#[test]
fn abort_answers_every_command_once_and_reports_closed_once() {
    let mut core = core(4_000);
    let now = Instant::now();
    core.handle_wall_clock(now, 1_700_000_000_000);
    let big = || ProducerRecord::new("t").value(vec![0u8; 1_500]);
    // No metadata yet: the records wait for it; the third waits for memory.
    assert_eq!(
        core.send(Some(OpId(1)), big(), now),
        Ok(SendStatus::Accepted)
    );
    assert_eq!(core.send(None, big(), now), Ok(SendStatus::Accepted));
    assert_eq!(
        core.send(Some(OpId(3)), big(), now),
        Ok(SendStatus::Waiting)
    );
    core.flush(OpId(10), None, now);
    core.partitions_for(OpId(11), "t", now);
    assert!(
        events(&mut core).is_empty(),
        "nothing is answered before the cluster is reached"
    );
    core.abort();
    let mut delivered = Vec::new();
    let mut answered = Vec::new();
    let mut closed = 0;
    for e in events(&mut core) {
        match e {
            ProducerEvent::Delivered(d) => delivered.extend(d.iter()),
            ProducerEvent::Admitted { op, result } => answered.push(("admitted", op, result)),
            ProducerEvent::Flushed { op, result } => answered.push(("flushed", op, result)),
            ProducerEvent::Partitions { op, result } => {
                answered.push(("partitions", op, result.map(|_| ())))
            }
            ProducerEvent::Closed => closed += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        delivered,
        [(OpId(1), Err(ProduceError::Closed))],
        "the record without an op is not reported"
    );
    answered.sort_by_key(|a| a.1);
    assert_eq!(
        answered,
        [
            ("admitted", OpId(3), Err(ProduceError::Closed)),
            ("flushed", OpId(10), Err(ProduceError::Closed)),
            ("partitions", OpId(11), Err(ProduceError::Closed)),
        ]
    );
    assert_eq!(closed, 1);
    assert!(core.is_closed());
    assert_eq!(core.pending_records(), 0);
    assert_eq!(
        core.shared().available_bytes(),
        4_000,
        "all memory returned"
    );
    // Closed is reported once; later commands are refused or answered at once.
    core.abort();
    core.close(None, now);
    assert!(events(&mut core).is_empty());
    assert_eq!(
        core.send(Some(OpId(4)), big(), now),
        Err(ProduceError::Closed)
    );
    core.flush(OpId(12), None, now);
    assert!(matches!(
        events(&mut core)[..],
        [ProducerEvent::Flushed {
            op: OpId(12),
            result: Ok(())
        }]
    ));
    assert_eq!(core.poll_timeout(), None);
}
