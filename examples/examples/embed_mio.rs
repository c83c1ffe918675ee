//! kafkit's cores in an event loop of your own: one thread, one `mio::Poll`, no kafkit driver.
//!
//! ```sh
//! cargo run -p kafkit-examples --example embed_mio          # starts the development broker
//! KAFKA_BOOTSTRAP=localhost:9092 cargo run -p kafkit-examples --example embed_mio
//! cargo test -p kafkit-examples --example embed_mio         # what CI runs
//! ```
//!
//! A `ProducerCore` and a group `ConsumerCore` are driven by hand, as the driving contract in
//! `kafkit_core::network` says: open the connections they ask for, feed them what the sockets
//! read, write what they transmit, wake them at their deadlines, react to their events. The
//! producer writes 1,000 records; the consumer joins a group, reads them, commits and leaves.
//! Nothing crosses threads, so nothing needs a lock, a channel or `Send`.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::ToSocketAddrs;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafkit_core::config::{AutoOffsetReset, ConsumerConfig, ProducerConfig};
use kafkit_core::consumer::{ConsumerCore, ConsumerEvent};
use kafkit_core::network::{ClientCore, CloseReason, ConnId, NetOptions, Output};
use kafkit_core::producer::{ProducerCore, ProducerEvent, ProducerRecord};
use kafkit_core::OpId;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

type Error = Box<dyn std::error::Error>;
const RECORDS: usize = 1_000;

// ---- the loop: what an embedder writes once, for any core ---------------------------------

/// A core, its connections (socket, connected yet, bytes not written yet) and its events.
/// `tag` (0 or 1) tells the two cores' mio tokens apart.
struct Driven<C: ClientCore> {
    core: C,
    conns: HashMap<ConnId, (TcpStream, bool, Vec<u8>)>,
    tag: usize,
    events: Vec<C::Event>,
}

impl<C: ClientCore> Driven<C> {
    /// Acts on everything the core asks for (after every input, as the contract says).
    fn drain(&mut self, poll: &Poll) {
        while let Some(out) = self.core.poll_output() {
            match out {
                Output::Connect { conn, host, port } => {
                    let token = Token(self.tag | (conn.0 as usize) << 1);
                    match open(poll, token, &host, port) {
                        Ok(stream) => drop(self.conns.insert(conn, (stream, false, Vec::new()))),
                        Err(e) => {
                            let why = CloseReason::ConnectFailed(e.to_string());
                            self.core.handle_closed(conn, why, Instant::now());
                        }
                    }
                }
                Output::Transmit { conn, data } => {
                    if let Some((stream, up, out)) = self.conns.get_mut(&conn) {
                        out.extend_from_slice(&data);
                        if *up {
                            let _ = write_out(stream, out); // a failure shows up as a socket event
                        }
                    }
                }
                // What is queued (a LeaveGroup, say) still goes out before the socket closes,
                // within a bound (spinning here: it is rare and short).
                Output::Close { conn } => {
                    if let Some((mut stream, _, mut out)) = self.conns.remove(&conn) {
                        let _ = poll.registry().deregister(&mut stream);
                        let bound = Instant::now() + Duration::from_secs(5);
                        while !out.is_empty() && Instant::now() < bound {
                            if write_out(&mut stream, &mut out).is_err() {
                                break;
                            }
                        }
                    }
                }
                Output::Event(event) => self.events.push(event),
            }
        }
    }

    /// A socket is ready: finish its connect, read what arrived, write what waits.
    fn ready(&mut self, conn: ConnId, now: Instant) {
        let Some((stream, up, out)) = self.conns.get_mut(&conn) else {
            return;
        };
        let mut fail = None;
        if !*up {
            if let Ok(Some(e)) | Err(e) = stream.take_error() {
                fail = Some(CloseReason::ConnectFailed(e.to_string()));
            } else if stream.peer_addr().is_ok() {
                *up = true;
                self.core.handle_connected(conn, now);
            }
        }
        let mut buf = [0u8; 64 * 1024];
        while *up && fail.is_none() {
            match stream.read(&mut buf) {
                Ok(0) => fail = Some(CloseReason::PeerClosed),
                Ok(n) => self.core.handle_data(conn, &buf[..n], now),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => fail = Some(CloseReason::Io(e.to_string())),
            }
        }
        if let Some(why) = fail.or_else(|| write_out(stream, out).err().map(CloseReason::Io)) {
            self.conns.remove(&conn);
            self.core.handle_closed(conn, why, now);
        }
    }
}

/// Starts a non-blocking connect (the name lookup blocks: fine here, not in a busy server).
fn open(poll: &Poll, token: Token, host: &str, port: u16) -> Result<TcpStream, Error> {
    let addr = (host, port).to_socket_addrs()?.next().ok_or("no address")?;
    let mut stream = TcpStream::connect(addr)?;
    let both = Interest::READABLE | Interest::WRITABLE;
    poll.registry().register(&mut stream, token, both)?;
    Ok(stream)
}

/// Writes what the socket takes now; the rest waits for the next writable event.
fn write_out(stream: &mut TcpStream, out: &mut Vec<u8>) -> Result<(), String> {
    while !out.is_empty() {
        match stream.write(out) {
            Ok(n) => drop(out.drain(..n)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// One turn: act on what the application's calls queued (they are inputs too), wait for the
/// sockets or the earliest deadline (not at all while events wait to be handled), feed the
/// cores, act on their outputs. An early `handle_timeout` is harmless, so both cores get one
/// whenever anything is due.
fn turn(
    poll: &mut Poll,
    events: &mut Events,
    p: &mut Driven<ProducerCore>,
    c: &mut Driven<ConsumerCore>,
) -> Result<(), Error> {
    p.drain(poll);
    c.drain(poll);
    let busy = !p.events.is_empty() || !c.events.is_empty();
    let due = [p.core.poll_timeout(), c.core.poll_timeout()]
        .into_iter()
        .flatten()
        .min();
    let wait = match due {
        _ if busy => Duration::ZERO,
        Some(t) => t.saturating_duration_since(Instant::now()),
        None => Duration::from_secs(1),
    };
    poll.poll(events, Some(wait))?;
    let now = Instant::now();
    for event in events.iter() {
        let (tag, conn) = (event.token().0 & 1, ConnId((event.token().0 >> 1) as u64));
        if tag == 0 {
            p.ready(conn, now)
        } else {
            c.ready(conn, now)
        }
    }
    if due.is_some_and(|t| t <= now) {
        p.core.handle_timeout(now);
        c.core.handle_timeout(now);
    }
    p.drain(poll);
    c.drain(poll);
    Ok(())
}

// ---- the application ----------------------------------------------------------------------

/// Produces [`RECORDS`] records to `topic`, reads them back in a group, commits and closes
/// both cores. Returns how many records the consumer read.
fn run(bootstrap: &str, topic: &str) -> Result<usize, Error> {
    let env = kafkit_os::driver_env(); // the OS's randomness, TLS roots and files
    let config = ProducerConfig::builder()
        .bootstrap_servers(bootstrap)
        .linger_ms(5)
        .build()?;
    let producer = ProducerCore::new(
        config.clone(),
        NetOptions::from_config(&config.common, &env)?,
    )?;
    let config = ConsumerConfig::builder()
        .bootstrap_servers(bootstrap)
        .group_id(format!("{topic}-group"))
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .build()?;
    let consumer = ConsumerCore::from_config(config, &env)?;
    let mut p = Driven {
        core: producer,
        conns: HashMap::new(),
        tag: 0,
        events: Vec::new(),
    };
    let mut c = Driven {
        core: consumer,
        conns: HashMap::new(),
        tag: 1,
        events: Vec::new(),
    };

    // The wall clock is an input: records sent without a timestamp are stamped from it.
    let unix_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    p.core.handle_wall_clock(Instant::now(), unix_ms);
    for i in 0..RECORDS {
        let record = ProducerRecord::new(topic)
            .key(format!("k{}", i % 10))
            .value(format!("record {i}"));
        // 1,000 small records fit the buffer; one that had to wait would be `Admitted` later.
        let _status = p.core.send(Some(OpId(i as u64)), record, Instant::now())?;
    }
    c.core.subscribe([topic], Instant::now())?;
    // A group member joins (and stays in the group) through its polls: poll once, then wait
    // for `RecordsReady` as Java's long poll does.
    c.core.take_records(500, Instant::now())?;
    c.core.set_poll_waiting(true);

    let (mut poll, mut events) = (Poll::new()?, Events::with_capacity(256));
    let (mut acked, mut read, mut closed) = (0, 0, 0);
    let limit = Instant::now() + Duration::from_secs(60);
    while closed < 2 {
        if Instant::now() > limit {
            return Err(format!("not done after 60 s: {acked} acknowledged, {read} read").into());
        }
        turn(&mut poll, &mut events, &mut p, &mut c)?;
        for event in std::mem::take(&mut p.events) {
            match event {
                ProducerEvent::Delivered(report) => {
                    for (_op, result) in report.iter() {
                        result?;
                        acked += 1;
                    }
                    p.core.recycle_deliveries(report);
                    if acked == RECORDS {
                        p.core.close(Some(Duration::from_secs(10)), Instant::now());
                    }
                }
                ProducerEvent::Admitted { result, .. } => result?,
                ProducerEvent::Fatal(e) => return Err(e.into()),
                ProducerEvent::Closed => closed += 1,
                _ => {}
            }
        }
        for event in std::mem::take(&mut c.events) {
            match event {
                ConsumerEvent::RecordsReady => {
                    let records = c.core.take_records(500, Instant::now())?;
                    for r in records.iter() {
                        // Stamped by the producer core from the wall clock it was given.
                        let age = unix_ms.abs_diff(r.timestamp);
                        assert!(
                            age < 60_000,
                            "offset {} has CreateTime {}",
                            r.offset,
                            r.timestamp
                        );
                    }
                    let was = read;
                    read += records.count();
                    if read == RECORDS && was < RECORDS {
                        c.core.set_poll_waiting(false);
                        c.core
                            .commit_sync(OpId(0), None, Duration::from_secs(10), Instant::now());
                    }
                }
                ConsumerEvent::Commit {
                    op: Some(_),
                    result,
                    ..
                } => {
                    result?;
                    c.core.close(Duration::from_secs(10), Instant::now());
                }
                ConsumerEvent::Closed => closed += 1,
                _ => {}
            }
        }
    }
    Ok(read)
}

/// `KAFKA_BOOTSTRAP`, or the development broker started here (kept running while held).
fn cluster() -> Result<kafkit_examples::Cluster, Error> {
    // A new group's first rebalance waits for more members (Kafka's default is 3 s).
    kafkit_examples::cluster_with(|config| {
        config.cluster.group_initial_rebalance_delay_ms = 100;
    })
    .map_err(|e| -> Error { e })
}

fn main() -> Result<(), Error> {
    let cluster = cluster()?;
    let bootstrap = cluster.bootstrap();
    let read = run(bootstrap, &kafkit_examples::unique("embed-mio"))?;
    println!("produced and consumed {read} records on {bootstrap}, one thread, no driver");
    Ok(())
}

#[test]
fn produces_consumes_commits_and_closes() {
    let cluster = cluster().unwrap();
    let topic = kafkit_examples::unique("embed-mio-test");
    assert_eq!(run(cluster.bootstrap(), &topic).unwrap(), RECORDS);
}
