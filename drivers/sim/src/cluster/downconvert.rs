//! Down-conversion of stored batches for fetchers that cannot read them: Fetch v0-1 carry
//! magic 0 messages, v2-3 magic 1, and a broker imitating an old release serves its own
//! message format at most ([`ClusterConfig::message_format`](super::ClusterConfig)).
//!
//! As Kafka's `LazyDownConversionRecords`: records keep their offsets, magic 1 keeps their
//! timestamps (magic 0 has none), headers are dropped, control batches (transaction markers)
//! are left out, and a compressed batch stays compressed with the same codec when the old
//! format has it (zstd does not: those records go uncompressed).

use bytes::Bytes;
use kafkit_core::compression::Compression;
use kafkit_core::records::{DecodeOptions, LegacyMessageSetBuilder, RecordSet};

/// The highest magic Fetch `version` can carry.
pub(super) fn fetch_magic(version: i16) -> i8 {
    match version {
        0 | 1 => 0,
        2 | 3 => 1,
        _ => 2,
    }
}

/// `stored` (one stored batch or message set) with everything newer than `magic` rewritten
/// in `magic`; `None` when nothing of it can be served in that format (only control batches),
/// the stored bytes themselves when nothing needs converting.
pub(super) fn down_convert(stored: &Bytes, magic: i8) -> Option<Bytes> {
    if stored.len() > 16 && stored[16] as i8 <= magic {
        return Some(stored.clone());
    }
    let mut out = Vec::with_capacity(stored.len());
    let mut any = false;
    for batch in RecordSet::new(stored.clone(), DecodeOptions::default()) {
        // What the cluster stored it validated on the way in; an unreadable batch is served
        // as it is, and the fetcher reports it as the corruption it is.
        let Ok(batch) = batch else {
            return Some(stored.clone());
        };
        if batch.magic() <= magic {
            out.extend_from_slice(batch.raw());
            any = true;
            continue;
        }
        if batch.is_control() {
            continue;
        }
        let codec = match batch.compression() {
            Compression::Zstd => Compression::None,
            c => c,
        };
        let base = batch.base_offset();
        let Ok(records) = batch.into_records() else {
            return Some(stored.clone());
        };
        // Offsets inside a batch are contiguous here (the model never compacts), so one set
        // from the batch's base offset keeps every record's offset.
        let built = LegacyMessageSetBuilder::new(magic, codec).and_then(|b| {
            let mut b = b.base_offset(base);
            for r in &records {
                b.append(r.timestamp, r.key.as_deref(), r.value.as_deref())?;
            }
            b.finish()
        });
        match built {
            Ok(set) => {
                out.extend_from_slice(&set);
                any = true;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cluster: cannot down-convert a batch; serving it as stored");
                return Some(stored.clone());
            }
        }
    }
    any.then(|| Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafkit_core::records::RecordBatchBuilder;

    fn stored(base: i64, codec: Compression) -> Bytes {
        let mut b = RecordBatchBuilder::new(codec).base_offset(base);
        for i in 0..3 {
            b.append(1_000 + i, Some(b"k"), Some(format!("v{i}").as_bytes()), &[])
                .unwrap();
        }
        b.finish().unwrap()
    }

    fn read(data: Bytes) -> Vec<(i8, i64, i64, Option<Bytes>)> {
        let mut out = Vec::new();
        for batch in RecordSet::new(data, DecodeOptions::default()) {
            let batch = batch.unwrap();
            let magic = batch.magic();
            for r in batch.into_records().unwrap() {
                out.push((magic, r.offset, r.timestamp, r.value));
            }
        }
        out
    }

    #[test]
    fn batches_become_messages_with_their_offsets() {
        for codec in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let data = stored(40, codec);
            let v1 = read(down_convert(&data, 1).unwrap());
            assert_eq!(v1.len(), 3, "{codec:?}");
            for (i, (magic, offset, ts, value)) in v1.into_iter().enumerate() {
                assert_eq!(magic, 1);
                assert_eq!(offset, 40 + i as i64);
                assert_eq!(ts, 1_000 + i as i64);
                assert_eq!(value.unwrap(), format!("v{i}").as_bytes());
            }
            let v0 = read(down_convert(&data, 0).unwrap());
            assert_eq!(v0.len(), 3);
            assert!(v0.iter().all(|(m, _, ts, _)| *m == 0 && *ts == -1));
            assert_eq!(v0[2].1, 42);
        }
        let data = stored(0, Compression::None);
        assert_eq!(down_convert(&data, 2).unwrap(), data, "nothing to convert");
    }
}
