//! `kafkit produce`: records from stdin or files, one per line (or per `-D` delimiter), like
//! `kcat -P`.
//!
//! Input is streamed: each record is handed to the producer as soon as it is read (the call
//! only blocks while the producer's buffer memory is full) and its outcome arrives in a
//! callback. At the end of the input the producer is flushed and closed, and a summary goes to
//! stderr.
//!
//! The input is read on a thread of its own, so that SIGINT or SIGTERM stops the command even
//! while it waits for input: what was read is sent, the producer is flushed and closed, the
//! summary printed, and the exit status is 128 + the signal's number. A second signal exits
//! at once.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkit_blocking::{Producer, StartError};
use kafkit_core::config::ProducerConfig;
use kafkit_core::producer::{ProduceError, ProducerRecord, RecordMetadata};

use crate::args::{GlobalArgs, ProduceArgs};
use crate::config;
use crate::error::{one_line, CliError};
use crate::signals;

/// Runs the command.
pub fn run(global: &GlobalArgs, args: &ProduceArgs) -> Result<(), CliError> {
    let delimiter =
        unescape(&args.delimiter).map_err(|e| CliError::Usage(format!("-D/--delimiter: {e}")))?;
    let key_delimiter = args
        .key_delimiter
        .as_deref()
        .map(unescape)
        .transpose()
        .map_err(|e| CliError::Usage(format!("-K/--key-delimiter: {e}")))?;
    config::check_topic_name(&args.topic)?;
    let config = producer_config(global, args)?;
    let inputs = open_inputs(&args.files)?;
    signals::graceful();
    let producer = Producer::start(&config).map_err(start_error)?;

    let mut template = ProducerRecord::new(args.topic.as_str());
    if let Some(p) = args.partition {
        template = template.partition(p);
    }
    for (name, value) in &args.headers {
        template = template.header(name.as_str(), Bytes::copy_from_slice(value.as_bytes()));
    }
    let fixed_key = args
        .key
        .as_ref()
        .map(|k| Bytes::copy_from_slice(k.as_bytes()));

    if let Some(id) = &args.transactional_id {
        let input = read_inputs(inputs, delimiter);
        let records = |data| {
            build(
                &template,
                data,
                fixed_key.as_ref(),
                key_delimiter.as_deref(),
            )
        };
        return transactional(&producer, id, args, input, records);
    }

    let stats = Arc::new(Mutex::new(Stats::default()));
    let started = Instant::now();
    let mut read = 0u64;
    let mut send_all = |pending: &mut Vec<Vec<u8>>| {
        for data in pending.drain(..) {
            read += 1;
            let record = build(
                &template,
                data,
                fixed_key.as_ref(),
                key_delimiter.as_deref(),
            );
            let report = stats.clone();
            let sent = producer.send_with_callback(record, move |result| {
                report.lock().expect("stats lock").outcome(result);
            });
            if let Err(e) = sent {
                stats.lock().expect("stats lock").failed(&e);
            }
        }
    };
    // Why the input was not read to its end, if it was not.
    let mut stopped: Option<String> = None;
    let input = read_inputs(inputs, delimiter);
    // Records read when a signal came, still to send.
    let mut pending = Vec::new();
    loop {
        let data = match input.recv_timeout(Duration::from_millis(100)) {
            Ok(Ok(data)) => data,
            Ok(Err(e)) => {
                stopped = Some(e);
                break;
            }
            Err(RecvTimeoutError::Timeout) => {
                if signals::stop_requested().is_some() {
                    pending.extend(input.try_iter().map_while(Result::ok));
                    break;
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if signals::stop_requested().is_some() {
            // What was read before the signal is sent too; the rest of the input is not.
            pending.extend(input.try_iter().map_while(Result::ok));
            pending.insert(0, data);
            break;
        }
        if let Some(e) = stats.lock().expect("stats lock").stop.clone() {
            stopped = Some(format!("the producer cannot go on: {e}"));
            break;
        }
        pending.push(data);
        send_all(&mut pending);
    }
    send_all(&mut pending);
    // Every record sent so far is delivered or failed once flush returns (close then fails
    // nothing more); their callbacks have run by then.
    let flushed = producer.flush(None);
    let closed = producer.close(None);
    let elapsed = started.elapsed();

    let mut stats = stats.lock().expect("stats lock").clone();
    for e in [flushed.err(), closed.err()].into_iter().flatten() {
        if !matches!(e, ProduceError::Closed) {
            stats.reasons.entry(e.to_string()).or_default();
        }
    }
    let unreported = read.saturating_sub(stats.delivered + stats.failed);
    if unreported > 0 {
        stats.failed += unreported;
        *stats
            .reasons
            .entry("no delivery report before the producer closed".into())
            .or_default() += unreported;
    }
    // A signal is not a failure: what was read is delivered, then the exit status says why
    // it stopped.
    let signal = signals::stop_requested();
    summary(&args.topic, read, &stats, elapsed, stopped.as_deref())?;
    match signal {
        Some(signal) => {
            eprintln!(
                "kafkit: stopped by {} after {read} records were read; they were flushed",
                signals::name(signal)
            );
            Err(CliError::Interrupted(signal))
        }
        None => Ok(()),
    }
}

/// `--transactional-id`: the records in transactions of `--txn-records` records each (one for
/// the whole input without it). A record that fails, or a commit that fails, aborts the open
/// transaction and ends the command; so does a signal (the commits before it stand).
fn transactional(
    producer: &Producer,
    id: &str,
    args: &ProduceArgs,
    input: Receiver<Result<Vec<u8>, String>>,
    record: impl Fn(Vec<u8>) -> ProducerRecord,
) -> Result<(), CliError> {
    let started = Instant::now();
    let mut txn = Txn {
        producer,
        per_txn: args.txn_records.unwrap_or(u64::MAX),
        begun: false,
        open: 0,
        committed: 0,
        transactions: 0,
        failure: Arc::new(Mutex::new(None)),
    };
    let outcome = (|| {
        producer
            .init_transactions()
            .map_err(|e| format!("init_transactions under `{id}` failed: {e}"))?;
        loop {
            let data = match input.recv_timeout(Duration::from_millis(100)) {
                Ok(Ok(data)) => data,
                Ok(Err(e)) => return Err(e),
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(signal) = signals::stop_requested() {
                        return Ok(Some(signal));
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            if let Some(signal) = signals::stop_requested() {
                return Ok(Some(signal));
            }
            txn.send(record(data))?;
        }
        txn.commit()?;
        Ok(None)
    })();
    let result = match outcome {
        Ok(None) => Ok(()),
        Ok(Some(signal)) => {
            let aborted = txn.abort();
            eprintln!("kafkit: stopped by {}: {aborted}", signals::name(signal));
            Err(CliError::Interrupted(signal))
        }
        Err(why) => {
            let aborted = txn.abort();
            Err(CliError::Failed(format!("{}; {aborted}", one_line(&why))))
        }
    };
    let _ = producer.close(None);
    eprintln!(
        "kafkit: committed {} record{} to {} in {} transaction{} under `{id}` in {:.2} s",
        txn.committed,
        if txn.committed == 1 { "" } else { "s" },
        args.topic,
        txn.transactions,
        if txn.transactions == 1 { "" } else { "s" },
        started.elapsed().as_secs_f64()
    );
    result
}

/// The open transaction of `kafkit produce --transactional-id`.
struct Txn<'a> {
    producer: &'a Producer,
    per_txn: u64,
    /// Whether a transaction is open.
    begun: bool,
    /// Records sent in the open transaction.
    open: u64,
    /// Records in committed transactions, and how many transactions.
    committed: u64,
    transactions: u64,
    /// The first record that failed in the open transaction.
    failure: Arc<Mutex<Option<String>>>,
}

impl Txn<'_> {
    fn send(&mut self, record: ProducerRecord) -> Result<(), String> {
        if !self.begun {
            self.producer
                .begin_transaction()
                .map_err(|e| format!("begin_transaction failed: {e}"))?;
            self.begun = true;
        }
        if let Some(e) = self.failure.lock().expect("failure lock").clone() {
            return Err(e);
        }
        let failure = self.failure.clone();
        self.producer
            .send_with_callback(record, move |r| {
                if let Err(e) = r {
                    failure
                        .lock()
                        .expect("failure lock")
                        .get_or_insert_with(|| format!("a record failed: {e}"));
                }
            })
            .map_err(|e| format!("a record failed: {e}"))?;
        self.open += 1;
        if self.open >= self.per_txn {
            self.commit()?;
        }
        Ok(())
    }

    /// Commits the open transaction (none open: nothing to do). Commit flushes first, so a
    /// record that failed fails the commit.
    fn commit(&mut self) -> Result<(), String> {
        if !self.begun {
            return Ok(());
        }
        self.producer.commit_transaction().map_err(|e| {
            match self.failure.lock().expect("failure lock").clone() {
                Some(record) => format!("commit failed: {e}; {record}"),
                None => format!("commit failed: {e}"),
            }
        })?;
        self.committed += self.open;
        self.transactions += 1;
        self.open = 0;
        self.begun = false;
        Ok(())
    }

    /// Aborts the open transaction, if one is; says what became of it.
    fn abort(&mut self) -> String {
        if !std::mem::take(&mut self.begun) {
            return "no transaction was open".to_owned();
        }
        let n = std::mem::take(&mut self.open);
        let records = if n == 1 { "record" } else { "records" };
        match self.producer.abort_transaction() {
            Ok(()) => format!("aborted the open transaction ({n} {records})"),
            Err(e) => format!(
                "the open transaction ({n} {records}) could not be aborted ({e}); the \
                 coordinator aborts it after transaction.timeout.ms"
            ),
        }
    }
}

/// Reads the inputs in order on a thread of its own, record by record (a small channel
/// keeps it at most a few records ahead); a failed read ends it with the error.
fn read_inputs(inputs: Vec<Input>, delimiter: Vec<u8>) -> Receiver<Result<Vec<u8>, String>> {
    let (tx, rx) = mpsc::sync_channel(64);
    let reader = move || {
        for (name, input) in inputs {
            let mut records = Splitter::new(BufReader::with_capacity(64 * 1024, input), &delimiter);
            loop {
                let next = match records.next_record() {
                    Ok(Some(data)) => Ok(data),
                    Ok(None) => break,
                    Err(e) => Err(format!("reading {name} failed: {e}")),
                };
                let failed = next.is_err();
                if tx.send(next).is_err() || failed {
                    return;
                }
            }
        }
    };
    // Without a thread (none can be started) the channel closes at once: no input is read,
    // which the summary reports.
    if let Err(e) = std::thread::Builder::new()
        .name("kafkit-input".into())
        .spawn(reader)
    {
        eprintln!("kafkit: error: cannot start the input thread: {e}");
    }
    rx
}

/// What came back from the records sent.
#[derive(Debug, Default, Clone)]
struct Stats {
    delivered: u64,
    /// Key and value bytes of the records delivered.
    bytes: u64,
    failed: u64,
    /// Failed records per distinct reason.
    reasons: BTreeMap<String, u64>,
    /// The first failure every later record would repeat (see [`stops_input`]).
    stop: Option<String>,
}

impl Stats {
    fn outcome(&mut self, result: Result<RecordMetadata, ProduceError>) {
        match result {
            Ok(m) => {
                self.delivered += 1;
                self.bytes +=
                    (m.serialized_key_size.max(0) + m.serialized_value_size.max(0)) as u64;
            }
            Err(e) => self.failed(&e),
        }
    }

    fn failed(&mut self, e: &ProduceError) {
        if self.stop.is_none() && stops_input(e) {
            self.stop = Some(e.to_string());
        }
        self.failed += 1;
        *self.reasons.entry(e.to_string()).or_default() += 1;
    }
}

/// Errors after which every later record would fail the same way (or wait `max_block_ms`
/// first): reading more input is pointless. They may come back from `send_with_callback` or, for records
/// that waited for metadata, in a delivery report.
fn stops_input(e: &ProduceError) -> bool {
    matches!(
        e,
        ProduceError::Fatal(_)
            | ProduceError::Closed
            | ProduceError::MaxBlockTimeout { .. }
            | ProduceError::UnknownTopic { .. }
            | ProduceError::InvalidConfig(_)
    )
}

fn summary(
    topic: &str,
    read: u64,
    stats: &Stats,
    elapsed: std::time::Duration,
    stopped: Option<&str>,
) -> Result<(), CliError> {
    let records = |n: u64| if n == 1 { "record" } else { "records" };
    let of = if stats.delivered == read {
        String::new()
    } else {
        format!(" of {read}")
    };
    eprintln!(
        "kafkit: produced {}{of} {} ({} bytes) to {topic} in {:.2} s{}",
        stats.delivered,
        records(read.max(stats.delivered)),
        stats.bytes,
        elapsed.as_secs_f64(),
        if stats.failed > 0 {
            format!("; {} failed", stats.failed)
        } else {
            String::new()
        }
    );
    for (reason, count) in &stats.reasons {
        if *count > 0 {
            eprintln!(
                "kafkit: failed: {count} {}: {}",
                records(*count),
                one_line(reason)
            );
        } else {
            eprintln!("kafkit: failed: {}", one_line(reason));
        }
    }
    if let Some(why) = stopped {
        eprintln!(
            "kafkit: stopped after {read} {}: {}",
            records(read),
            one_line(why)
        );
    }
    if stats.failed > 0 || stopped.is_some() || !stats.reasons.is_empty() {
        return Err(CliError::Failed(format!(
            "{} of {read} {} not delivered{}",
            read - stats.delivered.min(read),
            records(read),
            if stopped.is_some() {
                ", input not read to its end"
            } else {
                ""
            }
        )));
    }
    Ok(())
}

/// One record from the bytes read: the fixed key, or key and value split at the first key
/// delimiter (no delimiter: no key), on top of the partition and headers of `template`.
fn build(
    template: &ProducerRecord,
    data: Vec<u8>,
    fixed_key: Option<&Bytes>,
    key_delimiter: Option<&[u8]>,
) -> ProducerRecord {
    let mut record = template.clone();
    let data = Bytes::from(data);
    match key_delimiter.and_then(|d| find(&data, d).map(|at| (at, d.len()))) {
        Some((at, len)) => {
            record.key = Some(data.slice(..at));
            record.value = Some(data.slice(at + len..));
        }
        None => {
            record.key = fixed_key.cloned();
            record.value = Some(data);
        }
    }
    record
}

/// The first position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The producer configuration: `-b`, then the `-F` file, then every `-X`, then `-z` and
/// `--acks`; validated, with a warning for each option a producer does not use.
fn producer_config(global: &GlobalArgs, args: &ProduceArgs) -> Result<ProducerConfig, CliError> {
    let mut config = ProducerConfig::default();
    config
        .set("bootstrap_servers", &global.bootstrap)
        .map_err(|e| CliError::Usage(format!("bootstrap servers (-b or KAFKA_BOOTSTRAP): {e}")))?;
    for (name, value) in config::file_options(global)? {
        config.set(&name, &value).map_err(config::with_hint)?;
    }
    for (name, value) in &global.options {
        config.set(name, value).map_err(config::with_hint)?;
    }
    if let Some(codec) = &args.compression {
        config.set("compression_type", codec)?;
    }
    if let Some(acks) = &args.acks {
        config.set("acks", acks)?;
    }
    if let Some(id) = &args.transactional_id {
        config.set("transactional_id", id)?;
    }
    config.validate()?;
    for name in config.ignored_options() {
        eprintln!("kafkit: warning: option `{name}` is not used by a producer; ignored");
    }
    if let Some(why) = config.idempotence_disabled_by() {
        eprintln!("kafkit: warning: {why}");
    }
    Ok(config)
}

fn start_error(e: StartError) -> CliError {
    match e {
        StartError::Setup(e) => e.into(),
        e => CliError::Usage(e.to_string()),
    }
}

/// An input and its name for messages.
type Input = (String, Box<dyn Read + Send>);

/// The inputs in order: stdin when there are no files (or for `-`). Files are opened up front
/// so that a missing one fails before anything is sent.
fn open_inputs(files: &[PathBuf]) -> Result<Vec<Input>, CliError> {
    if files.is_empty() {
        return Ok(vec![("stdin".into(), Box::new(std::io::stdin()))]);
    }
    files
        .iter()
        .map(|path| {
            if path == Path::new("-") {
                return Ok((
                    "stdin".to_owned(),
                    Box::new(std::io::stdin()) as Box<dyn Read + Send>,
                ));
            }
            let file = File::open(path)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
            Ok((
                path.display().to_string(),
                Box::new(file) as Box<dyn Read + Send>,
            ))
        })
        .collect()
}

/// Splits a stream into records at a delimiter of one or more bytes, reading as it goes. A
/// delimiter at the very end does not start another (empty) record.
struct Splitter<'a, R> {
    reader: R,
    delimiter: &'a [u8],
    done: bool,
}

impl<'a, R: BufRead> Splitter<'a, R> {
    fn new(reader: R, delimiter: &'a [u8]) -> Self {
        assert!(!delimiter.is_empty(), "delimiters are never empty");
        Splitter {
            reader,
            delimiter,
            done: false,
        }
    }

    fn next_record(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        let last = self.delimiter[self.delimiter.len() - 1];
        let mut buf = Vec::new();
        loop {
            if self.reader.read_until(last, &mut buf)? == 0 {
                self.done = true;
                return Ok((!buf.is_empty()).then_some(buf));
            }
            if buf.ends_with(self.delimiter) {
                buf.truncate(buf.len() - self.delimiter.len());
                return Ok(Some(buf));
            }
        }
    }
}

/// A delimiter as given on the command line, with the escapes `\n`, `\r`, `\t`, `\0`, `\\`
/// and `\xNN`.
fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' || i + 1 == bytes.len() {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let (byte, len) = match bytes[i + 1] {
            b'n' => (b'\n', 2),
            b'r' => (b'\r', 2),
            b't' => (b'\t', 2),
            b'0' => (0, 2),
            b'\\' => (b'\\', 2),
            b'x' => {
                let hex = s
                    .get(i + 2..i + 4)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("`{s}`: \\x needs two hex digits"))?;
                (hex, 4)
            }
            _ => {
                return Err(format!(
                    "`{s}`: unknown escape (use \\n, \\r, \\t, \\0, \\\\ or \\xNN)"
                ))
            }
        };
        out.push(byte);
        i += len;
    }
    if out.is_empty() {
        return Err("the delimiter is empty".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(input: &[u8], delimiter: &[u8]) -> Vec<Vec<u8>> {
        let mut s = Splitter::new(input, delimiter);
        std::iter::from_fn(|| s.next_record().unwrap()).collect()
    }

    #[test]
    fn splits_at_delimiters() {
        assert_eq!(split(b"a\nb\n", b"\n"), [b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(split(b"a\nb", b"\n"), [b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(
            split(b"a\n\nb\n", b"\n"),
            [b"a".to_vec(), Vec::new(), b"b".to_vec()]
        );
        assert_eq!(split(b"", b"\n"), Vec::<Vec<u8>>::new());
        assert_eq!(split(b"\n", b"\n"), [Vec::<u8>::new()]);
        assert_eq!(
            split(b"one||two|three||", b"||"),
            [b"one".to_vec(), b"two|three".to_vec()]
        );
        assert_eq!(split(b"x|", b"||"), [b"x|".to_vec()]);
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape("\\n").unwrap(), b"\n");
        assert_eq!(unescape("a\\tb\\\\").unwrap(), b"a\tb\\");
        assert_eq!(unescape("\\x00\\x1F").unwrap(), [0, 0x1f]);
        assert_eq!(unescape("\\0").unwrap(), [0]);
        assert_eq!(unescape("::").unwrap(), b"::");
        assert_eq!(unescape("\\").unwrap(), b"\\");
        assert!(unescape("").is_err());
        assert!(unescape("\\q").is_err());
        assert!(unescape("\\x4").is_err());
    }

    #[test]
    fn keys_split_at_the_first_delimiter() {
        let template = ProducerRecord::new("t").header("h", "v");
        let r = build(&template, b"k:v:w".to_vec(), None, Some(b":"));
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"v:w"[..]));
        assert_eq!(r.headers.len(), 1);
        let r = build(&template, b"no key".to_vec(), None, Some(b":"));
        assert_eq!(r.key, None);
        assert_eq!(r.value.as_deref(), Some(&b"no key"[..]));
        let fixed = Bytes::from_static(b"fixed");
        let r = build(&template, b"v".to_vec(), Some(&fixed), None);
        assert_eq!(r.key, Some(fixed));
    }
}
