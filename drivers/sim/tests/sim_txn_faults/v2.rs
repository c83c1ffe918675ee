//! Transaction protocol v2 (KIP-890 part 2) in the fault scenarios: the cluster finalizes
//! `transaction.version` 2, and hooks record the version of every transactional request the
//! producers send, so a run proves which protocol it spoke: under v2 no AddPartitionsToTxn
//! or AddOffsetsToTxn at all, transactional Produce at v12, TxnOffsetCommit and EndTxn at v5;
//! under v1 the registrations and nothing above Produce v11, EndTxn v4, TxnOffsetCommit v4.
//! And a fault-free run checks that the producer moves to the epoch each EndTxn v5 returns.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use kafkit_core::consumer::{GroupMetadata, OffsetAndMetadata, TopicPartition};
use kafkit_core::producer::{ProducerEvent, ProducerRecord, SendStatus};
use kafkit_core::protocol::{ApiKey, RequestBody};
use kafkit_core::OpId;
use kafkit_sim::{Cluster, HookAction};

use super::{Fault, Scenario, GROUP, INPUT, OUTPUT};

/// The transactional requests a run sent: `(API name, version)` -> count, and the
/// `(producer id, epoch, commit)` of every EndTxn in order.
#[derive(Debug, Clone, Default)]
pub struct Versions {
    pub counts: BTreeMap<(&'static str, i16), u64>,
    pub end_txns: Vec<(i64, i16, bool)>,
}

impl Versions {
    /// Adds another run's counts (EndTxn sequences are per run and not kept).
    pub fn add(&mut self, other: &Versions) {
        for (k, n) in &other.counts {
            *self.counts.entry(*k).or_default() += n;
        }
    }

    fn count(&self, api: &str, versions: impl Fn(i16) -> bool) -> u64 {
        self.counts
            .iter()
            .filter(|((a, v), _)| *a == api && versions(*v))
            .map(|(_, n)| n)
            .sum()
    }

    /// Checks that the requests are those of protocol v2 (`v2`) or v1 only.
    pub fn check(&self, v2: bool) -> Result<(), String> {
        let all = |_: i16| true;
        let sent = |api| self.count(api, all);
        if sent("EndTxn") == 0 || sent("Produce") == 0 || sent("TxnOffsetCommit") == 0 {
            return Err(format!("too few transactional requests: {self:?}"));
        }
        let wrong = if v2 {
            sent("AddPartitionsToTxn")
                + sent("AddOffsetsToTxn")
                + self.count("Produce", |v| v != 12)
                + self.count("EndTxn", |v| v != 5)
                + self.count("TxnOffsetCommit", |v| v != 5)
        } else {
            (sent("AddPartitionsToTxn") == 0) as u64
                + (sent("AddOffsetsToTxn") == 0) as u64
                + self.count("Produce", |v| v > 11)
                + self.count("EndTxn", |v| v > 4)
                + self.count("TxnOffsetCommit", |v| v > 4)
        };
        if wrong > 0 {
            let protocol = if v2 { "v2" } else { "v1" };
            return Err(format!(
                "requests of the wrong protocol for {protocol}: {:?}",
                self.counts
            ));
        }
        Ok(())
    }
}

/// Hooks recording every transactional request of `cluster` (they let each one pass).
pub fn record_versions(cluster: &mut Cluster) -> Rc<RefCell<Versions>> {
    let seen = Rc::new(RefCell::new(Versions::default()));
    for api in [
        ApiKey::Produce,
        ApiKey::AddPartitionsToTxn,
        ApiKey::AddOffsetsToTxn,
        ApiKey::TxnOffsetCommit,
        ApiKey::EndTxn,
    ] {
        let seen = seen.clone();
        cluster.set_hook(
            api,
            Box::new(move |header, body| {
                let mut seen = seen.borrow_mut();
                match body {
                    RequestBody::Produce(p) if p.transactional_id.is_none() => {
                        return HookAction::Pass
                    }
                    RequestBody::EndTxn(e) => {
                        seen.end_txns
                            .push((e.producer_id, e.producer_epoch, e.committed));
                    }
                    _ => {}
                }
                *seen
                    .counts
                    .entry((api.name(), header.request_api_version))
                    .or_default() += 1;
                HookAction::Pass
            }),
        );
    }
    seen
}

/// One producer, no faults, under v2: three transactions (commit, abort, commit) with
/// records and offsets. Each EndTxn goes out at the epoch the previous one returned, and
/// the coordinator ends at the epoch after the last.
#[test]
fn protocol_v2_takes_the_epoch_each_end_txn_returns() {
    let mut s = Scenario::new(7, Fault::CoordinatorMoves, true);
    let seen = record_versions(&mut s.cluster.borrow_mut());
    let client = s.instances[0].client;
    let wait = |s: &mut Scenario, op: u64| {
        let until = s.sim.now() + Duration::from_secs(10);
        loop {
            let done = s
                .sim
                .take_client_events(client)
                .into_iter()
                .find_map(|e| match e {
                    ProducerEvent::Transaction { op: o, result } if o.0 == op => Some(result),
                    _ => None,
                });
            if let Some(result) = done {
                return result;
            }
            assert!(s.sim.now() < until, "op {op} not answered");
            let next = s.sim.now() + Duration::from_millis(20);
            s.advance(next).expect("simulation");
        }
    };
    let op = s.instances[0].op;
    wait(&mut s, op).expect("init_transactions");
    let first_epoch = s
        .cluster
        .borrow()
        .transactions()
        .get(super::TXN_ID)
        .expect("known")
        .producer_epoch;
    for (round, commit) in [true, false, true].into_iter().enumerate() {
        let now: Instant = s.sim.now();
        let p = s.sim.client(client);
        p.begin_transaction().expect("begin");
        assert!(p.transaction_protocol_v2(), "the cluster offers v2");
        for n in 0..3 {
            let record = ProducerRecord::new(OUTPUT).value(format!("r{round}-{n}"));
            let status = p.send(None, record, now).expect("send");
            assert_eq!(status, SendStatus::Accepted);
        }
        let offsets = BTreeMap::from([(
            TopicPartition::new(INPUT, 0),
            OffsetAndMetadata::new(round as i64 + 1),
        )]);
        let group = GroupMetadata {
            group_id: GROUP.into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        };
        p.send_offsets_to_transaction(OpId(100 + round as u64), offsets, group, now);
        wait(&mut s, 100 + round as u64).expect("offsets");
        let now = s.sim.now();
        let p = s.sim.client(client);
        if commit {
            p.commit_transaction(OpId(200 + round as u64), now);
        } else {
            p.abort_transaction(OpId(200 + round as u64), now);
        }
        wait(&mut s, 200 + round as u64).expect("end");
    }
    let seen = seen.borrow();
    let pid = seen.end_txns[0].0;
    assert_eq!(
        seen.end_txns,
        vec![
            (pid, first_epoch, true),
            (pid, first_epoch + 1, false),
            (pid, first_epoch + 2, true),
        ]
    );
    let t = s.cluster.borrow();
    let t = t.transactions().get(super::TXN_ID).expect("known");
    assert_eq!((t.producer_id, t.producer_epoch), (pid, first_epoch + 3));
    seen.check(true).expect("v2 requests only");
    assert_eq!(s.committed_offset(), 3);
}
