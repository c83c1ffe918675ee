//! Control records: the records of a control batch (attribute bit 5), which the broker (or a
//! transaction coordinator through it) writes and consumers do not hand to the application.
//!
//! ```text
//! key:   version: int16 (0), type: int16 (0 = ABORT, 1 = COMMIT, others used by KRaft)
//! value (ABORT and COMMIT, "EndTransactionMarker"): version: int16 (0), coordinatorEpoch: int32
//! ```
//! Newer versions may append fields; readers ignore bytes past the ones they know, as Java
//! does.

use bytes::{BufMut, Bytes};

use crate::codec::DecodeError;

/// The type in a control record's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlRecordType {
    /// A transaction was aborted (type 0).
    Abort,
    /// A transaction was committed (type 1).
    Commit,
    /// Any other type (KRaft's leader-change, snapshot and voter records among them).
    Other(i16),
}

impl ControlRecordType {
    /// The type's id on the wire.
    pub fn id(self) -> i16 {
        match self {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
            ControlRecordType::Other(n) => n,
        }
    }

    /// The type with this id.
    pub fn from_id(id: i16) -> Self {
        match id {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            n => ControlRecordType::Other(n),
        }
    }
}

/// A decoded control record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlRecord {
    /// An end-of-transaction marker: ABORT or COMMIT.
    EndTxn {
        /// Whether the transaction committed (COMMIT) or aborted (ABORT).
        commit: bool,
        /// The epoch of the transaction coordinator that wrote the marker.
        coordinator_epoch: i32,
    },
    /// A control record of another type, kept raw.
    Other {
        /// The type id from the key.
        kind: i16,
        /// The record's value as it was.
        value: Option<Bytes>,
    },
}

impl ControlRecord {
    /// A COMMIT marker.
    pub fn commit(coordinator_epoch: i32) -> Self {
        ControlRecord::EndTxn {
            commit: true,
            coordinator_epoch,
        }
    }

    /// An ABORT marker.
    pub fn abort(coordinator_epoch: i32) -> Self {
        ControlRecord::EndTxn {
            commit: false,
            coordinator_epoch,
        }
    }

    /// The record's type.
    pub fn kind(&self) -> ControlRecordType {
        match self {
            ControlRecord::EndTxn { commit: true, .. } => ControlRecordType::Commit,
            ControlRecord::EndTxn { commit: false, .. } => ControlRecordType::Abort,
            ControlRecord::Other { kind, .. } => ControlRecordType::from_id(*kind),
        }
    }

    /// Parses a control record from its key and value.
    pub fn parse(key: Option<&[u8]>, value: Option<&Bytes>) -> Result<Self, DecodeError> {
        let key = key.ok_or(DecodeError::UnexpectedNull("control record key"))?;
        let [v0, v1, t0, t1, ..] = *key else {
            return Err(DecodeError::invalid(
                "control record key",
                format!("{} bytes, need 4", key.len()),
            ));
        };
        let version = i16::from_be_bytes([v0, v1]);
        if version < 0 {
            return Err(DecodeError::invalid(
                "control record key",
                format!("negative version {version}"),
            ));
        }
        let kind = i16::from_be_bytes([t0, t1]);
        match ControlRecordType::from_id(kind) {
            ControlRecordType::Abort | ControlRecordType::Commit => {
                let value = value.ok_or(DecodeError::UnexpectedNull("end transaction marker"))?;
                let [v0, v1, e0, e1, e2, e3, ..] = **value else {
                    return Err(DecodeError::invalid(
                        "end transaction marker",
                        format!("{} bytes, need 6", value.len()),
                    ));
                };
                let version = i16::from_be_bytes([v0, v1]);
                if version < 0 {
                    return Err(DecodeError::invalid(
                        "end transaction marker",
                        format!("negative version {version}"),
                    ));
                }
                Ok(ControlRecord::EndTxn {
                    commit: kind == 1,
                    coordinator_epoch: i32::from_be_bytes([e0, e1, e2, e3]),
                })
            }
            ControlRecordType::Other(kind) => Ok(ControlRecord::Other {
                kind,
                value: value.cloned(),
            }),
        }
    }

    /// The record's key (version 0).
    pub fn key(&self) -> [u8; 4] {
        let mut k = [0u8; 4];
        k[2..].copy_from_slice(&self.kind().id().to_be_bytes());
        k
    }

    /// The record's value (version 0 for markers).
    pub fn value(&self) -> Option<Bytes> {
        match self {
            ControlRecord::EndTxn {
                coordinator_epoch, ..
            } => {
                let mut v = Vec::with_capacity(6);
                v.put_i16(0);
                v.put_i32(*coordinator_epoch);
                Some(v.into())
            }
            ControlRecord::Other { value, .. } => value.clone(),
        }
    }
}
