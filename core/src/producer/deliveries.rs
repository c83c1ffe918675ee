//! How the producer core reports records' outcomes: [`Deliveries`], one report per Produce
//! response (or per sweep of expired or failed records), iterable as
//! `(OpId, DeliveryResult)`.
//!
//! The report is built for the hot path: a completed batch adds one entry for the batch
//! (topic, partition, the broker's answer) and one small entry per record that has an
//! [`OpId`]; records sent without one add nothing. Each record's [`RecordMetadata`] is only
//! built when the report is read. Reports handed back with
//! [`ProducerCore::recycle_deliveries`](super::ProducerCore::recycle_deliveries) keep their
//! vectors for the next ones, so a steady producer allocates nothing per record (nor per
//! response).

use std::sync::Arc;

use super::error::ProduceError;
use super::record::RecordMetadata;
use crate::records::TimestampType;
use crate::OpId;

/// A record's outcome.
pub type DeliveryResult = Result<RecordMetadata, ProduceError>;

/// What [`ProducerCore::send`](super::ProducerCore::send) did with a record it did not
/// refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a record that waits for memory is reported by ProducerEvent::Admitted"]
pub enum SendStatus {
    /// The record is in the producer; its outcome comes in a
    /// [`ProducerEvent::Delivered`](super::ProducerEvent::Delivered) report.
    Accepted,
    /// Buffer memory is short: the record waits (in order, up to `max_block_ms`) and
    /// [`ProducerEvent::Admitted`](super::ProducerEvent::Admitted) reports when it is
    /// admitted or refused (a record sent without an op is not reported).
    Waiting,
}

/// The broker's answer for one batch in a report, or why its records failed.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    /// Where the records went and the broker's answer, or the error every record of the
    /// group failed with.
    result: Result<Acked, ProduceError>,
    /// The group's records are `records[previous group's end..end]`.
    end: usize,
}

#[derive(Debug, Clone, PartialEq)]
struct Acked {
    topic: Arc<str>,
    partition: i32,
    /// The batch's first offset (`-1` when unknown, as with `acks=0`).
    base_offset: i64,
    /// The broker's LogAppendTime, or `-1` when the topic keeps CreateTime.
    log_append_time: i64,
}

impl Acked {
    /// The metadata of record `r` of this batch.
    #[inline]
    fn metadata(&self, r: &Reported) -> RecordMetadata {
        let (timestamp, timestamp_type) = if self.log_append_time != -1 {
            (self.log_append_time, TimestampType::LogAppendTime)
        } else {
            (r.timestamp, TimestampType::CreateTime)
        };
        RecordMetadata {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: if self.base_offset >= 0 {
                self.base_offset + i64::from(r.index)
            } else {
                -1
            },
            timestamp,
            timestamp_type,
            serialized_key_size: r.key_size,
            serialized_value_size: r.value_size,
        }
    }
}

/// One reported record: its op and what its [`RecordMetadata`] needs besides its batch's
/// answer.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Reported {
    op: OpId,
    /// The record's position in its batch (its offset is the batch's base offset plus this).
    index: u32,
    timestamp: i64,
    key_size: i32,
    value_size: i32,
}

/// The outcomes of a set of records, reported together in
/// [`ProducerEvent::Delivered`](super::ProducerEvent::Delivered): every record of one
/// Produce response that was sent with an [`OpId`], or those of a sweep (expired, failed,
/// refused records). Iterate it for `(OpId, DeliveryResult)` pairs, in the order the records
/// were sent per partition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deliveries {
    outcomes: Vec<Outcome>,
    records: Vec<Reported>,
}

impl Deliveries {
    /// How many records this report covers.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether it covers none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The `(OpId, DeliveryResult)` of every record in the report.
    pub fn iter(&self) -> DeliveriesIter<'_> {
        DeliveriesIter {
            records: self.records.iter(),
            outcomes: self.outcomes.iter(),
            current: None,
            index: 0,
            group_end: 0,
        }
    }

    /// Calls `f` with the `(OpId, DeliveryResult)` of every record in the report, as
    /// [`Deliveries::iter`] yields them: the cheaper way to read a report, since each record's
    /// result is built where `f` takes it, group by group, rather than handed through an
    /// iterator's state.
    #[inline]
    pub fn for_each(&self, mut f: impl FnMut(OpId, DeliveryResult)) {
        let mut start = 0;
        for group in &self.outcomes {
            let records = self.records.get(start..group.end).unwrap_or_default();
            start = group.end;
            match &group.result {
                Ok(a) => {
                    for r in records {
                        f(r.op, Ok(a.metadata(r)));
                    }
                }
                Err(e) => {
                    for r in records {
                        f(r.op, Err(e.clone()));
                    }
                }
            }
        }
    }

    /// Empties the report, keeping its memory.
    pub(crate) fn clear(&mut self) {
        self.outcomes.clear();
        self.records.clear();
    }

    /// Where the records of the next group start (pass to [`Deliveries::end_group`]).
    pub(crate) fn mark(&self) -> usize {
        self.records.len()
    }

    /// Adds one record of the group being built.
    #[inline]
    pub(crate) fn push(
        &mut self,
        op: OpId,
        index: usize,
        timestamp: i64,
        key_size: i32,
        value_size: i32,
    ) {
        self.records.push(Reported {
            op,
            index: u32::try_from(index).unwrap_or(u32::MAX),
            timestamp,
            key_size,
            value_size,
        });
    }

    /// Ends the group of records pushed since `mark` with their batch's answer
    /// (`Ok((topic, partition, base_offset, log_append_time))`) or their common error. A
    /// group without records is not kept.
    pub(crate) fn end_group(
        &mut self,
        mark: usize,
        result: Result<(&Arc<str>, i32, i64, i64), &ProduceError>,
    ) {
        if self.records.len() == mark {
            return;
        }
        let result = match result {
            Ok((topic, partition, base_offset, log_append_time)) => Ok(Acked {
                topic: topic.clone(),
                partition,
                base_offset,
                log_append_time,
            }),
            Err(e) => Err(e.clone()),
        };
        self.outcomes.push(Outcome {
            result,
            end: self.records.len(),
        });
    }

    /// Adds one record that failed on its own (refused, or failed before it had a batch).
    pub(crate) fn push_failed(&mut self, op: OpId, error: ProduceError) {
        self.records.push(Reported {
            op,
            index: 0,
            timestamp: -1,
            key_size: -1,
            value_size: -1,
        });
        self.outcomes.push(Outcome {
            result: Err(error),
            end: self.records.len(),
        });
    }
}

impl<'a> IntoIterator for &'a Deliveries {
    type Item = (OpId, DeliveryResult);
    type IntoIter = DeliveriesIter<'a>;

    fn into_iter(self) -> DeliveriesIter<'a> {
        self.iter()
    }
}

/// The `(OpId, DeliveryResult)` pairs of a [`Deliveries`] report.
#[derive(Debug, Clone)]
pub struct DeliveriesIter<'a> {
    records: std::slice::Iter<'a, Reported>,
    outcomes: std::slice::Iter<'a, Outcome>,
    /// The group of the records up to `group_end` (walked alongside, not looked up per
    /// record: this runs once per delivered record on the loop thread).
    current: Option<&'a Outcome>,
    /// The index of the next record.
    index: usize,
    group_end: usize,
}

impl Iterator for DeliveriesIter<'_> {
    type Item = (OpId, DeliveryResult);

    #[inline]
    fn next(&mut self) -> Option<(OpId, DeliveryResult)> {
        let r = self.records.next()?;
        if self.index >= self.group_end {
            // Groups are never empty, so the next one holds this record.
            let next = self.outcomes.next()?;
            self.group_end = next.end;
            self.current = Some(next);
        }
        self.index += 1;
        let result = match &self.current?.result {
            Ok(a) => Ok(a.metadata(r)),
            Err(e) => Err(e.clone()),
        };
        Some((r.op, result))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.records.size_hint()
    }
}

impl ExactSizeIterator for DeliveriesIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_carry_their_answer_to_each_record() {
        let mut d = Deliveries::default();
        let topic: Arc<str> = "t".into();
        let m = d.mark();
        d.push(OpId(1), 0, 100, 1, 2);
        d.push(OpId(3), 2, 101, -1, 5);
        d.end_group(m, Ok((&topic, 4, 40, -1)));
        let m = d.mark();
        d.end_group(m, Ok((&topic, 5, 0, -1)));
        d.push_failed(OpId(9), ProduceError::Closed);
        let m = d.mark();
        d.push(OpId(7), 0, 102, -1, -1);
        d.end_group(m, Ok((&topic, 1, -1, 555)));
        assert_eq!(d.len(), 4);
        let got: Vec<_> = d.iter().collect();
        let meta = |r: &DeliveryResult| r.as_ref().ok().cloned().unwrap();
        assert_eq!(got[0].0, OpId(1));
        let m0 = meta(&got[0].1);
        assert_eq!((m0.partition, m0.offset, m0.timestamp), (4, 40, 100));
        assert_eq!((m0.serialized_key_size, m0.serialized_value_size), (1, 2));
        let m1 = meta(&got[1].1);
        assert_eq!(
            (got[1].0, m1.offset),
            (OpId(3), 42),
            "offset = base + index"
        );
        assert_eq!(got[2], (OpId(9), Err(ProduceError::Closed)));
        let m3 = meta(&got[3].1);
        assert_eq!(m3.offset, -1, "acks=0: offset unknown");
        assert_eq!(
            (m3.timestamp, m3.timestamp_type),
            (555, TimestampType::LogAppendTime)
        );
        let mut walked = Vec::new();
        d.for_each(|op, r| walked.push((op, r)));
        assert_eq!(walked, got, "for_each yields what iter yields");
        d.clear();
        assert!(d.is_empty() && d.iter().next().is_none());
    }
}
