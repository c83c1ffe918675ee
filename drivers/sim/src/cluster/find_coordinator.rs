//! FindCoordinator, and which broker coordinates a group or transactional id.
//!
//! Which broker coordinates a key is decided as Kafka does: `abs(hash(key)) % 50` names a
//! partition of `__consumer_offsets` (or `__transaction_state`, which has as many), spread
//! over the live brokers. The coordinators' state is kept by the cluster, keyed by group or
//! transactional id, so it moves with coordinatorship: a request reaching another broker
//! gets `NOT_COORDINATOR`, and the new coordinator carries on where the old one stopped (as
//! Kafka does after reloading the internal topic).

use kafkit_core::protocol::find_coordinator::response::Coordinator;
use kafkit_core::protocol::{
    ErrorCode, FindCoordinatorRequest, FindCoordinatorResponse, ResponseBody,
};

use super::{Cluster, Ctx, Outcome};

/// Partitions of Kafka's `__consumer_offsets` (`offsets.topic.num.partitions`).
const OFFSETS_PARTITIONS: i32 = 50;

/// Java's `String.hashCode` over UTF-16 code units.
fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// The `__consumer_offsets` (or `__transaction_state`) partition of a group or
/// transactional id.
pub(super) fn coordinator_partition(key: &str) -> i32 {
    (java_hash(key) & 0x7fff_ffff) % OFFSETS_PARTITIONS
}

impl Cluster {
    /// The broker coordinating `key` (a group or transactional id): -1 if every broker is
    /// down.
    pub fn coordinator_for(&self, key: &str) -> i32 {
        let live: Vec<i32> = self
            .brokers
            .iter()
            .filter(|b| b.alive)
            .map(|b| b.id)
            .collect();
        if live.is_empty() {
            return -1;
        }
        let partition = coordinator_partition(key);
        live[partition as usize % live.len()]
    }

    pub(super) fn handle_find_coordinator(
        &mut self,
        ctx: &Ctx,
        req: FindCoordinatorRequest,
    ) -> Outcome {
        let v = ctx.version;
        let key_type = if v >= 1 { req.key_type } else { 0 };
        let lookup = |key: &str| -> Result<i32, (ErrorCode, &'static str)> {
            if !matches!(key_type, 0 | 1) {
                return Err((ErrorCode::INVALID_REQUEST, "Unsupported key type"));
            }
            if key.is_empty() {
                return Err((ErrorCode::INVALID_REQUEST, "The coordinator key is empty"));
            }
            match self.coordinator_for(key) {
                -1 => Err((
                    ErrorCode::COORDINATOR_NOT_AVAILABLE,
                    "The coordinator is not available.",
                )),
                id => Ok(id),
            }
        };
        let mut resp = FindCoordinatorResponse::default();
        if v < 4 {
            match lookup(&req.key) {
                Ok(id) => {
                    let b = self.broker(id).cloned();
                    if let Some(b) = b {
                        resp.node_id = b.id;
                        resp.host = b.host;
                        resp.port = b.port;
                    }
                    resp.error_message = None;
                }
                Err((code, msg)) => {
                    resp.error_code = code.code();
                    resp.node_id = -1;
                    resp.port = -1;
                    resp.error_message = Some(msg.into());
                }
            }
        } else {
            for key in &req.coordinator_keys {
                let mut c = Coordinator {
                    key: key.clone(),
                    node_id: -1,
                    port: -1,
                    error_message: None,
                    ..Default::default()
                };
                match lookup(key) {
                    Ok(id) => {
                        if let Some(b) = self.broker(id) {
                            c.node_id = b.id;
                            c.host = b.host.clone();
                            c.port = b.port;
                        }
                    }
                    Err((code, msg)) => {
                        c.error_code = code.code();
                        c.error_message = Some(msg.into());
                    }
                }
                resp.coordinators.push(c);
            }
        }
        Outcome::Reply(ResponseBody::FindCoordinator(resp))
    }
}

#[cfg(test)]
mod tests {
    use super::java_hash;

    #[test]
    fn java_string_hash() {
        assert_eq!(java_hash(""), 0);
        assert_eq!(java_hash("a"), 97);
        assert_eq!(java_hash("group"), 98629247);
        // Overflow wraps as in Java: "polygenelubricants".hashCode() == Integer.MIN_VALUE.
        assert_eq!(java_hash("polygenelubricants"), i32::MIN);
    }
}
