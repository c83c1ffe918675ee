//! The applications' side of a run: polls, commits and listener callbacks, and the
//! invariants checked after every step (the protocol-specific ownership checks are in
//! `classic` and `consumer`).

use std::collections::BTreeMap;
use std::time::Instant;

use kafkit_core::consumer::{ConsumerError, ConsumerEvent, OpId, RebalanceKind, RebalanceOutcome};

use super::*;

impl Scenario {
    pub(crate) fn apps_step(&mut self) -> Result<(), String> {
        let now = self.sim.now();
        let now_d = self.elapsed();
        for i in 0..self.apps.len() {
            let events = self.sim.take_client_events(i);
            for e in events {
                if let ConsumerEvent::Commit {
                    result: Err(err), ..
                } = e
                {
                    self.log(format!("member {i} commit failed: {err}"));
                }
            }
            match self.apps[i].life {
                Life::Left | Life::Crashed => continue,
                Life::Stalled(until) if now_d < until => continue,
                Life::Stalled(_) => {
                    self.log(format!("member {i} polls again"));
                    self.apps[i].life = Life::Polling;
                }
                Life::Leaving(since) => {
                    if self.sim.client(i).is_closed() {
                        self.log(format!("member {i} closed"));
                        self.apps[i].life = Life::Left;
                        continue;
                    }
                    if now_d > since + CLOSE_TIMEOUT + Duration::from_secs(1) {
                        return Err(
                            self.fail(format!("member {i} did not close within {CLOSE_TIMEOUT:?}"))
                        );
                    }
                    // Closing runs the revocation callbacks, which the application completes.
                    self.callbacks(i, now);
                    continue;
                }
                Life::Polling => {}
            }
            if self.callbacks(i, now) {
                continue;
            }
            loop {
                let result = self.sim.client(i).take_records(500, now);
                self.apps[i].polled += 1;
                match result {
                    Ok(r) if r.is_empty() => break,
                    Ok(r) => {
                        let mut ranges: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
                        for rec in r.iter() {
                            let e = ranges
                                .entry(rec.partition)
                                .or_insert((rec.offset, rec.offset));
                            e.1 = rec.offset;
                        }
                        self.log(format!("member {i} polled {ranges:?}"));
                        let owned = self.sim.client(i).assignment();
                        for rec in r {
                            if self.apps[i].revoked.contains(&rec.topic_partition()) {
                                return Err(self.fail(format!(
                                    "member {i} polled offset {} of partition {} after it ran \
                                     on_partitions_revoked/lost for it",
                                    rec.offset, rec.partition
                                )));
                            }
                            if !owned.contains(&rec.topic_partition()) {
                                return Err(self.fail(format!(
                                    "member {i} polled offset {} of partition {} it does not own \
                                     (owns {owned:?})",
                                    rec.offset, rec.partition
                                )));
                            }
                            let expected = format!("{}-{}", rec.partition, rec.offset);
                            if rec.value.as_deref() != Some(expected.as_bytes()) {
                                return Err(self.fail(format!(
                                    "member {i}: partition {} offset {} holds {:?}, not {expected}",
                                    rec.partition, rec.offset, rec.value
                                )));
                            }
                            self.consumed.insert((rec.partition, rec.offset));
                            self.stats.records += 1;
                        }
                    }
                    // A commit the listener asked for fails when the member lost its
                    // generation meanwhile (Java's commitSync throws inside the callback;
                    // kafkit reports it from the next poll). The application goes on.
                    Err(
                        e @ (ConsumerError::Group { .. }
                        | ConsumerError::Timeout { .. }
                        | ConsumerError::Network(_)),
                    ) => {
                        self.log(format!("member {i}: poll: {e}"));
                        self.stats.poll_errors += 1;
                        break;
                    }
                    Err(e) => {
                        return Err(self.fail(format!("member {i}: poll failed: {e}")));
                    }
                }
            }
            if self.apps[i].commits == Commits::Manual && now_d >= self.apps[i].next_commit {
                self.apps[i].next_commit = now_d + Duration::from_secs(1);
                let positions: Vec<(i32, i64)> = self
                    .sim
                    .client(i)
                    .consumed_offsets()
                    .iter()
                    .map(|(t, o)| (t.partition, o.offset))
                    .collect();
                self.log(format!("member {i} commit_async {positions:?}"));
                self.sim.client(i).commit_async(OpId(0), None, now);
            }
        }
        Ok(())
    }

    /// Runs member `i`'s pending listener callbacks; returns whether there was one.
    fn callbacks(&mut self, i: usize, now: Instant) -> bool {
        let mut ran = false;
        for _ in 0..4 {
            let Some(call) = self.sim.client(i).pending_rebalance().cloned() else {
                break;
            };
            let mut outcome = RebalanceOutcome::default();
            if call.kind == RebalanceKind::Revoked && self.apps[i].commits == Commits::Manual {
                outcome.commit = call
                    .positions
                    .iter()
                    .filter(|(tp, _)| call.partitions.contains(*tp))
                    .map(|(tp, o)| (tp.clone(), o.clone()))
                    .collect();
            }
            let parts: Vec<i32> = call.partitions.iter().map(|t| t.partition).collect();
            self.log(format!(
                "member {i} gen {} {:?} {parts:?}{}",
                call.group.generation_id,
                call.kind,
                if outcome.commit.is_empty() {
                    String::new()
                } else {
                    format!(
                        " committing {:?}",
                        outcome
                            .commit
                            .iter()
                            .map(|(t, o)| (t.partition, o.offset))
                            .collect::<Vec<_>>()
                    )
                }
            ));
            match call.kind {
                RebalanceKind::Assigned => {
                    for t in &call.partitions {
                        self.apps[i].revoked.remove(t);
                    }
                }
                _ => self.apps[i].revoked.extend(call.partitions.iter().cloned()),
            }
            self.sim
                .client(i)
                .complete_rebalance(call.seq, outcome, now);
            ran = true;
        }
        ran
    }

    /// The invariants that hold at every step.
    pub(crate) fn check(&mut self) -> Result<(), String> {
        let requests = std::mem::take(&mut *self.commit_requests.borrow_mut());
        for r in requests {
            self.log(r);
        }
        self.log_members();
        match self.protocol {
            Protocol::Classic(_) => self.classic_owners()?,
            Protocol::Consumer { .. } => self.consumer_owners()?,
        }
        for p in 0..PARTITIONS {
            let now = self
                .cluster
                .borrow()
                .groups()
                .committed_offset(GROUP, TOPIC, p)
                .map(|c| c.offset);
            if let Some(offset) = now {
                let before = self.committed.insert(p, offset);
                if let Some(b) = before {
                    if offset < b {
                        return Err(self.fail(format!(
                            "committed offset of partition {p} moved back from {b} to {offset}"
                        )));
                    }
                    if offset != b {
                        self.log(format!("partition {p} committed {offset}"));
                    }
                } else {
                    self.log(format!("partition {p} committed {offset}"));
                }
            }
        }
        Ok(())
    }

    /// Traces every open member whose state, generation (epoch) or assignment changed.
    fn log_members(&mut self) {
        for i in 0..self.apps.len() {
            let c = self.sim.client(i);
            if c.is_closed() {
                continue;
            }
            let state = c.group_state();
            let md = c.group_metadata().expect("a group member");
            let owned = c.assignment();
            let seen = (state, md.generation_id, owned.clone());
            if self.apps[i].last_seen.as_ref() != Some(&seen) {
                let parts: Vec<i32> = owned.iter().map(|t| t.partition).collect();
                self.log(format!(
                    "member {i} {state:?} gen {} id {} owns {parts:?}",
                    md.generation_id, md.member_id
                ));
                self.apps[i].last_seen = Some(seen);
            }
        }
    }
}
