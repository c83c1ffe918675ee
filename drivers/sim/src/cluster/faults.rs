//! Fault hooks: broker crashes and restarts, leader moves, quota throttling.
//!
//! Replication is modelled simply: a partition's followers copy the leader's log
//! [`ClusterConfig::replication_delay`](super::ClusterConfig::replication_delay) after each
//! append; the high watermark is the smallest log end offset over the ISR; a crashed broker
//! leaves every ISR at once. A new leader keeps only what it had copied, so `acks=all` data
//! (below the high watermark, hence on every ISR member) survives any leader change, while
//! `acks=1` data not yet copied is lost.

use std::time::{Duration, Instant};

use kafkit_core::protocol::{RequestHeader, ResponseBody};

use super::{Cluster, ConnOutput};

/// One throttle a broker applies ([`Cluster::set_throttle`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Throttle {
    /// Only requests with this `client_id` in their header; every client when `None`.
    client_id: Option<String>,
    ms: i32,
}

impl Cluster {
    fn alive_flags(&self) -> Vec<bool> {
        self.brokers.iter().map(|b| b.alive).collect()
    }

    /// Crashes broker `id` at `now`: its connections drop (closes appear in
    /// [`Cluster::take_ready`]), its fetch sessions are lost, it leaves every ISR, and the
    /// partitions it led elect the first live in-sync replica (or go leaderless). Its log
    /// survives for [`Cluster::restart_broker`]. No-op if it is already down.
    pub fn crash_broker(&mut self, id: i32, now: Instant) {
        self.advance(now);
        let Some(b) = usize::try_from(id)
            .ok()
            .and_then(|i| self.brokers.get_mut(i))
        else {
            return;
        };
        if !b.alive {
            return;
        }
        b.alive = false;
        let mut dropped: Vec<u64> = self
            .conns
            .keys()
            .filter(|(b, _)| *b == id)
            .map(|(_, c)| *c)
            .collect();
        dropped.sort_unstable();
        for c in &dropped {
            self.conns.remove(&(id, *c));
            self.groups.connection_closed(id, *c);
        }
        // Responses not yet sent die with the broker.
        let q = self.outbox.entry(id).or_default();
        q.clear();
        q.extend(dropped.iter().map(|&c| (c, ConnOutput::Close)));
        self.sessions.clear_broker(id);
        let alive = self.alive_flags();
        let is_alive =
            |b: i32| usize::try_from(b).ok().and_then(|i| alive.get(i)).copied() == Some(true);
        for t in self.topics.values_mut() {
            for p in &mut t.partitions {
                if !p.replicas.contains(&id) {
                    continue;
                }
                p.remove_from_isr(id);
                if p.leader == id {
                    let next = p.isr.iter().copied().find(|&r| is_alive(r)).unwrap_or(-1);
                    p.change_leader(next);
                }
                p.update_isr_and_hw(&is_alive);
            }
        }
        self.wake_all();
        self.settle(now);
    }

    /// Restarts broker `id` at `now`: it accepts connections again, leads the partitions that
    /// had no live leader, and as a follower catches up with its leaders after the
    /// replication delay (rejoining their ISR). No-op if it is up.
    pub fn restart_broker(&mut self, id: i32, now: Instant) {
        self.advance(now);
        let Some(b) = usize::try_from(id)
            .ok()
            .and_then(|i| self.brokers.get_mut(i))
        else {
            return;
        };
        if b.alive {
            return;
        }
        b.alive = true;
        let alive = self.alive_flags();
        let is_alive =
            |b: i32| usize::try_from(b).ok().and_then(|i| alive.get(i)).copied() == Some(true);
        let mut catch_up = Vec::new();
        for t in self.topics.values_mut() {
            for p in &mut t.partitions {
                if !p.replicas.contains(&id) {
                    continue;
                }
                if p.leader < 0 {
                    p.change_leader(id);
                    p.update_isr_and_hw(&is_alive);
                } else {
                    catch_up.push((t.name.clone(), p.index, p.log_end_offset()));
                }
            }
        }
        for (topic, partition, leo) in catch_up {
            if self.config.replication_delay.is_zero() {
                self.replicate(&topic, partition, Some(leo));
            } else {
                self.schedule_replication(&topic, partition, leo, now);
            }
        }
        self.wake_all();
        self.settle(now);
    }

    /// Makes `new_leader` the leader of `topic`/`partition` at `now`, bumping the leader
    /// epoch. `new_leader` must be a live replica; if it had not copied everything, the log is
    /// truncated to what it had (like an unclean election).
    pub fn move_leader(
        &mut self,
        topic: &str,
        partition: i32,
        new_leader: i32,
        now: Instant,
    ) -> Result<(), String> {
        self.advance(now);
        let alive = self.alive_flags();
        let is_alive =
            |b: i32| usize::try_from(b).ok().and_then(|i| alive.get(i)).copied() == Some(true);
        let p = self
            .topics
            .get_mut(topic)
            .and_then(|t| t.partition_mut(partition))
            .ok_or_else(|| format!("no partition {topic}-{partition}"))?;
        if !p.replicas.contains(&new_leader) {
            return Err(format!(
                "broker {new_leader} is not a replica of {topic}-{partition}"
            ));
        }
        if !is_alive(new_leader) {
            return Err(format!("broker {new_leader} is down"));
        }
        p.change_leader(new_leader);
        p.update_isr_and_hw(&is_alive);
        self.wake_all();
        self.settle(now);
        Ok(())
    }

    /// Makes broker `id` throttle a client as a quota violation does: every response it
    /// sends to requests whose header names `client_id` (every client with `None`) carries
    /// `throttle_time_ms = throttle` (whole milliseconds, capped at `i32::MAX`), in the APIs
    /// and versions that have the field. The broker answers at once and does not mute the
    /// connection itself, so a client that sends again before the throttle ends is seen to.
    /// Replaces an earlier throttle of the same broker and client; a zero throttle removes it.
    /// Fetch responses the development broker sends in pieces are not throttled.
    pub fn set_throttle(&mut self, id: i32, client_id: Option<&str>, throttle: Duration) {
        let ms = i32::try_from(throttle.as_millis()).unwrap_or(i32::MAX);
        let list = self.throttles.entry(id).or_default();
        let client_id = client_id.map(str::to_owned);
        list.retain(|t| t.client_id != client_id);
        if ms > 0 {
            list.push(Throttle { client_id, ms });
        }
        if list.is_empty() {
            self.throttles.remove(&id);
        }
    }

    /// Sets the throttle time of a response broker `broker` sends for `header`'s request, if
    /// it throttles that client (the largest matching throttle).
    pub(super) fn apply_throttle(
        &self,
        broker: i32,
        header: &RequestHeader,
        body: &mut ResponseBody,
    ) {
        let Some(list) = self.throttles.get(&broker) else {
            return;
        };
        let ms = list
            .iter()
            .filter(|t| t.client_id.is_none() || t.client_id == header.client_id)
            .map(|t| t.ms)
            .max();
        if let (Some(ms), Some(field)) = (ms, body.throttle_time_ms_mut()) {
            *field = (*field).max(ms);
        }
    }
}
