//! `kafkit consume`: records of a topic's partitions printed to stdout, like `kcat -C`.
//!
//! The partitions are assigned by hand (no consumer group, nothing committed) and each starts
//! where `-o` says. Records are written through one buffered writer, flushed after every poll
//! (a batch of up to `max_poll_records`), as raw bytes in the `-f` format. `-e` exits once
//! every partition is at its end: its position reached the high watermark of its latest fetch
//! (kcat's partition EOF); `-c` exits after a number of records.
//!
//! With `-G GROUP` kafkit is a member of that consumer group instead: it subscribes to the
//! topics, reads what the coordinator assigns it from the committed offsets, and closes
//! gracefully at `-c` or `-e` (the positions are committed, the member leaves the group). At
//! `-c`, the partitions whose records were fetched but not printed are sought back to the first
//! one not printed, so the commit covers exactly what was printed.
//!
//! SIGINT or SIGTERM stops it after the records of the current poll are printed, closing
//! cleanly as at `-c` (with `-G`: the positions are committed and the member leaves the group,
//! so that the next member starts where this one stopped at once); a second signal exits at
//! once. The exit status is then 128 + the signal's number.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufWriter, Write};
use std::time::Duration;

use kafkit_blocking::{Consumer, StartError};
use kafkit_core::config::ConsumerConfig;
use kafkit_core::consumer::{ConsumerError, ConsumerRecord, TopicPartition};

use crate::args::{ConsumeArgs, GlobalArgs};
use crate::config;
use crate::consume_stats::StatsReporter;
use crate::error::CliError;
use crate::signals;

/// How long a poll waits for records when nothing else bounds it: also how long a signal may
/// wait to be noticed.
const POLL: Duration = Duration::from_millis(250);

/// Where each partition starts (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The earliest offset.
    Beginning,
    /// The end: only records written from now on.
    End,
    /// An absolute offset.
    Offset(i64),
    /// This many records before the end (never before the beginning).
    Tail(i64),
    /// The first record at or after this time (ms since the epoch); the end if none.
    Timestamp(i64),
}

/// Parses `-o`: `beginning`, `end`, `OFFSET`, `-N`, `@TIMESTAMP_MS` (or kcat's `s@TIMESTAMP_MS`).
pub fn parse_start(s: &str) -> Result<Start, String> {
    let number = |n: &str, what: &str| {
        n.parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("`{s}`: {what} must be a non-negative integer"))
    };
    match s {
        "beginning" => Ok(Start::Beginning),
        "end" => Ok(Start::End),
        _ => {
            if let Some(ts) = s.strip_prefix("s@").or_else(|| s.strip_prefix('@')) {
                number(ts, "the timestamp").map(Start::Timestamp)
            } else if let Some(n) = s.strip_prefix('-') {
                number(n, "the count before the end").map(Start::Tail)
            } else if s.starts_with(|c: char| c.is_ascii_digit()) {
                number(s, "the offset").map(Start::Offset)
            } else {
                Err(format!(
                    "`{s}` is not a start (beginning, end, OFFSET, -N or @TIMESTAMP_MS)"
                ))
            }
        }
    }
}

/// One piece of the `-f` format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// Literal bytes (escapes already turned into bytes).
    Text(Vec<u8>),
    /// `%s`
    Value,
    /// `%k`
    Key,
    /// `%S`
    ValueLen,
    /// `%K`
    KeyLen,
    /// `%t`
    Topic,
    /// `%p`
    Partition,
    /// `%o`
    Offset,
    /// `%T`
    Timestamp,
    /// `%h`
    Headers,
}

/// Parses a kcat format string: `%` tokens, and text with the escapes `\n`, `\r`, `\t`, `\0`,
/// `\\` and `\xNN` (any other escaped character stands for itself, as in kcat).
fn parse_format(format: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut text = Vec::new();
    let bytes = format.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let token = match bytes.get(i + 1) {
                    Some(b's') => Token::Value,
                    Some(b'k') => Token::Key,
                    Some(b'S') => Token::ValueLen,
                    Some(b'K') => Token::KeyLen,
                    Some(b't') => Token::Topic,
                    Some(b'p') => Token::Partition,
                    Some(b'o') => Token::Offset,
                    Some(b'T') => Token::Timestamp,
                    Some(b'h') => Token::Headers,
                    Some(b'%') => {
                        text.push(b'%');
                        i += 2;
                        continue;
                    }
                    None => return Err(format!("`{format}` ends with a lone %")),
                    Some(_) => {
                        let c = format[i + 1..].chars().next().unwrap_or('?');
                        return Err(format!(
                            "`%{c}` is not a format token (use %s %k %S %K %t %p %o %T %h or %%)"
                        ));
                    }
                };
                if !text.is_empty() {
                    tokens.push(Token::Text(std::mem::take(&mut text)));
                }
                tokens.push(token);
                i += 2;
            }
            b'\\' if i + 1 < bytes.len() => {
                let (byte, len) = match bytes[i + 1] {
                    b'n' => (b'\n', 2),
                    b'r' => (b'\r', 2),
                    b't' => (b'\t', 2),
                    b'0' => (0, 2),
                    b'x' => {
                        let hex = format
                            .get(i + 2..i + 4)
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                            .ok_or_else(|| format!("`{format}`: \\x needs two hex digits"))?;
                        (hex, 4)
                    }
                    other => (other, 2),
                };
                text.push(byte);
                i += len;
            }
            b => {
                text.push(b);
                i += 1;
            }
        }
    }
    if !text.is_empty() {
        tokens.push(Token::Text(text));
    }
    Ok(tokens)
}

/// Writes `record` as `tokens` say.
fn write_record(
    out: &mut impl Write,
    tokens: &[Token],
    record: &ConsumerRecord,
) -> std::io::Result<()> {
    let len = |b: &Option<bytes::Bytes>| b.as_ref().map_or(-1, |b| b.len() as i64);
    for token in tokens {
        match token {
            Token::Text(t) => out.write_all(t)?,
            Token::Value => out.write_all(record.value.as_deref().unwrap_or_default())?,
            Token::Key => out.write_all(record.key.as_deref().unwrap_or_default())?,
            Token::ValueLen => write!(out, "{}", len(&record.value))?,
            Token::KeyLen => write!(out, "{}", len(&record.key))?,
            Token::Topic => out.write_all(record.topic.as_bytes())?,
            Token::Partition => write!(out, "{}", record.partition)?,
            Token::Offset => write!(out, "{}", record.offset)?,
            Token::Timestamp => write!(out, "{}", record.timestamp)?,
            Token::Headers => {
                for (i, h) in record.headers.iter().enumerate() {
                    if i > 0 {
                        out.write_all(b",")?;
                    }
                    out.write_all(h.key.as_bytes())?;
                    out.write_all(b"=")?;
                    match &h.value {
                        Some(v) => out.write_all(v)?,
                        None => out.write_all(b"NULL")?,
                    }
                }
            }
        }
    }
    Ok(())
}

/// Runs the command.
pub fn run(global: &GlobalArgs, args: &ConsumeArgs) -> Result<(), CliError> {
    let tokens =
        parse_format(&args.format).map_err(|e| CliError::Usage(format!("-f/--format: {e}")))?;
    let start =
        parse_start(&args.offset).map_err(|e| CliError::Usage(format!("-o/--offset: {e}")))?;
    for topic in &args.topics {
        config::check_topic_name(topic)?;
    }
    signals::graceful();
    if let Some(group) = &args.group {
        return run_group(global, args, group, start, &tokens);
    }
    let [topic] = args.topics.as_slice() else {
        return Err(CliError::Usage(
            "several topics (-t) need a consumer group (-G)".into(),
        ));
    };
    let config = consumer_config(global, None)?;
    let consumer = Consumer::start(&config).map_err(start_error)?;
    let partitions = partitions(&consumer, topic, args.partition)?;
    consumer.assign(partitions.clone()).map_err(failed)?;
    set_start(&consumer, &partitions, start)?;
    if args.count == Some(0) {
        return Ok(());
    }

    let mut out = BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    // With -e, the partitions not yet at their end.
    let mut open: BTreeSet<TopicPartition> = if args.exit_at_end {
        partitions.iter().cloned().collect()
    } else {
        BTreeSet::new()
    };
    // With -e a poll comes back empty soon after the data ends, to look at the ends again.
    let timeout = if args.exit_at_end {
        Duration::from_millis(100)
    } else {
        POLL
    };
    let mut written = 0u64;
    let mut stats = StatsReporter::new(args.stats.map(Duration::from_secs));
    loop {
        let records = consumer.poll(timeout).map_err(failed)?;
        for record in records.iter() {
            write_record(&mut out, &tokens, record)?;
            written += 1;
            if Some(written) == args.count {
                out.flush()?;
                stats.finish(&consumer);
                return done(written, topic, "after the count (-c)");
            }
        }
        out.flush()?;
        stats.tick(&consumer);
        if let Some(signal) = signals::stop_requested() {
            drop(out);
            stats.finish(&consumer);
            let closed = consumer.close().map_err(failed);
            done(written, topic, &format!("on {}", signals::name(signal)))?;
            closed?;
            return Err(CliError::Interrupted(signal));
        }
        if args.exit_at_end {
            // A partition can only have reached its end if it returned records just now, or
            // if nothing came at all.
            let check: Vec<TopicPartition> = if records.is_empty() {
                open.iter().cloned().collect()
            } else {
                records
                    .partitions()
                    .filter(|tp| open.contains(*tp))
                    .cloned()
                    .collect()
            };
            for tp in check {
                if at_end(&consumer, &tp)? {
                    open.remove(&tp);
                }
            }
            if open.is_empty() {
                stats.finish(&consumer);
                return done(written, topic, "at the end of every partition (-e)");
            }
        }
    }
}

/// `kafkit consume -G`: a member of `group`, subscribed to the topics.
fn run_group(
    global: &GlobalArgs,
    args: &ConsumeArgs,
    group: &str,
    start: Start,
    tokens: &[Token],
) -> Result<(), CliError> {
    let reset =
        match start {
            Start::Beginning => "earliest",
            Start::End => "latest",
            _ => return Err(CliError::Usage(
                "-o/--offset: with a group (-G), -o takes `beginning` or `end` (where partitions \
                 without a committed offset start)"
                    .into(),
            )),
        };
    let config = consumer_config(global, Some((group, reset)))?;
    let consumer = Consumer::start(&config).map_err(start_error)?;
    for topic in &args.topics {
        if consumer
            .partitions_for_topic(topic)
            .map_err(failed)?
            .is_none()
        {
            return Err(CliError::Failed(format!(
                "topic `{topic}` does not exist (or this client may not describe it)"
            )));
        }
    }
    let topics = args.topics.join(", ");
    consumer
        .subscribe(args.topics.iter().cloned())
        .map_err(failed)?;
    let mut stats = StatsReporter::new(args.stats.map(Duration::from_secs));
    let result = read_group(&consumer, args, tokens, &mut stats);
    stats.finish(&consumer);
    // Closing commits the positions (with auto-commit) and leaves the group.
    let closed = consumer.close().map_err(failed);
    let (written, why) = result?;
    closed?;
    done(written, &topics, &why)?;
    match signals::stop_requested() {
        Some(signal) => Err(CliError::Interrupted(signal)),
        None => Ok(()),
    }
}

/// Reads as a group member until -c, -e or a signal says to stop; returns the records
/// written and why it stopped.
fn read_group(
    consumer: &Consumer,
    args: &ConsumeArgs,
    tokens: &[Token],
    stats: &mut StatsReporter,
) -> Result<(u64, String), CliError> {
    let mut written = 0u64;
    if args.count == Some(0) {
        return Ok((written, "after the count (-c)".into()));
    }
    let mut out = BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let timeout = if args.exit_at_end {
        Duration::from_millis(100)
    } else {
        POLL
    };
    loop {
        let records = consumer.poll(timeout).map_err(failed)?;
        let mut unprinted: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for record in records.iter() {
            if Some(written) == args.count {
                unprinted
                    .entry(record.topic_partition())
                    .or_insert(record.offset);
                continue;
            }
            write_record(&mut out, tokens, record)?;
            written += 1;
        }
        out.flush()?;
        stats.tick(consumer);
        if Some(written) == args.count {
            // The positions go back to the first record not printed, so that closing
            // commits exactly what was printed.
            for (tp, offset) in unprinted {
                consumer.seek(&tp, offset).map_err(failed)?;
            }
            return Ok((written, "after the count (-c)".into()));
        }
        if let Some(signal) = signals::stop_requested() {
            return Ok((written, format!("on {}", signals::name(signal))));
        }
        // At the end once a poll finds nothing and every assigned partition is at its end
        // (not before the member has an assignment).
        if args.exit_at_end && records.is_empty() {
            let assignment = consumer.assignment().map_err(failed)?;
            let mut all = !assignment.is_empty();
            for tp in &assignment {
                if !at_end(consumer, tp)? {
                    all = false;
                    break;
                }
            }
            if all {
                return Ok((
                    written,
                    "at the end of every assigned partition (-e)".into(),
                ));
            }
        }
    }
}

/// Whether the partition's position reached the high watermark of its latest fetch.
fn at_end(consumer: &Consumer, tp: &TopicPartition) -> Result<bool, CliError> {
    let Some(highwater) = consumer.highwater(tp).map_err(failed)? else {
        return Ok(false);
    };
    Ok(consumer.position(tp).map_err(failed)? >= highwater)
}

fn done(written: u64, topic: &str, why: &str) -> Result<(), CliError> {
    eprintln!(
        "kafkit: consumed {written} {} from {topic}; stopped {why}",
        if written == 1 { "record" } else { "records" }
    );
    Ok(())
}

/// The partitions to read: `only`, or every partition of `topic`.
fn partitions(
    consumer: &Consumer,
    topic: &str,
    only: Option<i32>,
) -> Result<Vec<TopicPartition>, CliError> {
    let infos = consumer
        .partitions_for_topic(topic)
        .map_err(failed)?
        .ok_or_else(|| {
            CliError::Failed(format!(
                "topic `{topic}` does not exist (or this client may not describe it)"
            ))
        })?;
    let mut all: Vec<i32> = infos.iter().map(|p| p.partition).collect();
    all.sort_unstable();
    match only {
        Some(p) if all.contains(&p) => Ok(vec![TopicPartition::new(topic, p)]),
        Some(p) => Err(CliError::Failed(format!(
            "topic `{topic}` has no partition {p} (it has {})",
            match all.len() {
                1 => "partition 0".to_owned(),
                n => format!("{n} partitions"),
            }
        ))),
        None => Ok(all
            .into_iter()
            .map(|p| TopicPartition::new(topic, p))
            .collect()),
    }
}

/// Moves every partition to where `start` says.
fn set_start(
    consumer: &Consumer,
    partitions: &[TopicPartition],
    start: Start,
) -> Result<(), CliError> {
    match start {
        Start::Beginning => consumer.seek_to_beginning(partitions).map_err(failed),
        Start::End => consumer.seek_to_end(partitions).map_err(failed),
        Start::Offset(offset) => partitions
            .iter()
            .try_for_each(|tp| consumer.seek(tp, offset))
            .map_err(failed),
        Start::Tail(n) => {
            let beginnings = consumer.beginning_offsets(partitions).map_err(failed)?;
            let ends = consumer.end_offsets(partitions).map_err(failed)?;
            for tp in partitions {
                let (Some(&beginning), Some(&end)) = (beginnings.get(tp), ends.get(tp)) else {
                    return Err(CliError::Failed(format!("no offsets for {tp}")));
                };
                consumer
                    .seek(tp, end.saturating_sub(n).max(beginning))
                    .map_err(failed)?;
            }
            Ok(())
        }
        Start::Timestamp(ts) => {
            let query: BTreeMap<TopicPartition, i64> =
                partitions.iter().map(|tp| (tp.clone(), ts)).collect();
            let found = consumer.offsets_for_times(query).map_err(failed)?;
            let mut none_after = Vec::new();
            for tp in partitions {
                match found.get(tp).copied().flatten() {
                    Some(o) => consumer.seek(tp, o.offset).map_err(failed)?,
                    None => none_after.push(tp.clone()),
                }
            }
            // No record that recent: start at the end, for records still to come. The end is
            // looked up and sought explicitly: a `seek_to_end` reset issued right after the
            // lookup leaves the partition unfetched (reported to the consumer core).
            if !none_after.is_empty() {
                for (tp, end) in consumer.end_offsets(&none_after).map_err(failed)? {
                    consumer.seek(&tp, end).map_err(failed)?;
                }
            }
            Ok(())
        }
    }
}

/// The consumer configuration: `-b`, then for a group (`-G`) its id and the
/// `auto_offset_reset` of `-o`, then the `-F` file, then every `-X`; validated, with a warning
/// for each option a consumer does not use. Reading never creates the topic unless
/// `allow.auto.create.topics` is set again.
fn consumer_config(
    global: &GlobalArgs,
    group: Option<(&str, &str)>,
) -> Result<ConsumerConfig, CliError> {
    let mut config = ConsumerConfig::default();
    config
        .set("bootstrap_servers", &global.bootstrap)
        .map_err(|e| CliError::Usage(format!("bootstrap servers (-b or KAFKA_BOOTSTRAP): {e}")))?;
    config.allow_auto_create_topics = false;
    if let Some((group, reset)) = group {
        config
            .set("group_id", group)
            .map_err(|e| CliError::Usage(format!("-G/--group: {e}")))?;
        config.set("auto_offset_reset", reset)?;
    }
    for (name, value) in config::file_options(global)? {
        config.set(&name, &value).map_err(config::with_hint)?;
    }
    for (name, value) in &global.options {
        config.set(name, value).map_err(config::with_hint)?;
    }
    config.validate()?;
    for name in config.ignored_options() {
        eprintln!("kafkit: warning: option `{name}` is not used by a consumer; ignored");
    }
    Ok(config)
}

fn start_error(e: StartError) -> CliError {
    match e {
        StartError::Setup(e) => e.into(),
        e => CliError::Usage(e.to_string()),
    }
}

/// A consumer call's failure: the cluster's answer (exit status 1).
fn failed(e: ConsumerError) -> CliError {
    CliError::Failed(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafkit_core::records::Header;

    #[test]
    fn starts() {
        assert_eq!(parse_start("beginning"), Ok(Start::Beginning));
        assert_eq!(parse_start("end"), Ok(Start::End));
        assert_eq!(parse_start("42"), Ok(Start::Offset(42)));
        assert_eq!(parse_start("-10"), Ok(Start::Tail(10)));
        assert_eq!(
            parse_start("@1700000000000"),
            Ok(Start::Timestamp(1_700_000_000_000))
        );
        assert_eq!(parse_start("s@5"), Ok(Start::Timestamp(5)));
        for bad in ["", "start", "-", "-x", "@", "@-1", "1.5", "12ab", "--3"] {
            assert!(parse_start(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn formats() {
        assert_eq!(
            parse_format("%s\\n").unwrap(),
            [Token::Value, Token::Text(b"\n".to_vec())]
        );
        assert_eq!(
            parse_format("%t[%p]@%o 100%% \\t\\x41\\q").unwrap(),
            [
                Token::Topic,
                Token::Text(b"[".to_vec()),
                Token::Partition,
                Token::Text(b"]@".to_vec()),
                Token::Offset,
                Token::Text(b" 100% \tAq".to_vec()),
            ]
        );
        assert!(parse_format("%").is_err());
        assert!(parse_format("%x").is_err());
        assert!(parse_format("%é").is_err());
        assert!(parse_format("\\x4").is_err());
        assert_eq!(parse_format("").unwrap(), []);
    }

    fn record() -> ConsumerRecord {
        ConsumerRecord {
            topic: "t".into(),
            partition: 2,
            offset: 7,
            timestamp: 1_700_000_000_123,
            timestamp_type: None,
            key: None,
            value: Some(Bytes::from_static(b"v\x00\xff")),
            headers: vec![
                Header {
                    key: "a".into(),
                    value: Some(Bytes::from_static(b"1")),
                },
                Header {
                    key: "b".into(),
                    value: None,
                },
            ]
            .into(),
            leader_epoch: None,
            serialized_key_size: -1,
            serialized_value_size: 3,
        }
    }

    fn render(format: &str, r: &ConsumerRecord) -> Vec<u8> {
        let mut out = Vec::new();
        write_record(&mut out, &parse_format(format).unwrap(), r).unwrap();
        out
    }

    #[test]
    fn records_render_as_raw_bytes() {
        let r = record();
        assert_eq!(render("%s\\n", &r), b"v\x00\xff\n");
        assert_eq!(
            render("%t %p %o %T [%k] %K %S %h", &r),
            b"t 2 7 1700000000123 [] -1 3 a=1,b=NULL"
        );
        let mut keyed = record();
        keyed.key = Some(Bytes::from_static(b""));
        keyed.value = None;
        keyed.headers = Vec::new().into();
        assert_eq!(render("%K %S [%s] [%h]", &keyed), b"0 -1 [] []");
    }
}
