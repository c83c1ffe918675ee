//! A one-connection broker stand-in on localhost that answers ApiVersions and Metadata with
//! kafkit's own encoders, then reports when the client closes the connection. For what the
//! mock cluster cannot show: whether a driver closes its sockets.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kafkit_core::protocol::api_versions::response::ApiVersion;
use kafkit_core::protocol::metadata::response::MetadataResponseBroker;
use kafkit_core::protocol::{
    decode_request_frame, encode_response, ApiKey, ApiVersionsResponse, MetadataResponse,
    RequestBody,
};

/// How the single connection ended, as the fake broker saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The client closed it (EOF or reset), this long after [`FakeBroker::mark`].
    Closed(Duration),
    /// Still open when the fake broker stopped waiting.
    StillOpen(Duration),
    /// Something else went wrong (a request it cannot answer, an I/O error).
    Failed(String),
}

/// The fake broker: accepts one connection on `127.0.0.1:port`.
pub struct FakeBroker {
    /// The port it listens on.
    pub port: u16,
    mark: mpsc::Sender<Instant>,
    thread: JoinHandle<Ending>,
}

impl FakeBroker {
    /// Starts listening; the connection is served on a thread that gives up `wait` after
    /// [`FakeBroker::mark`] (or after accepting, if never marked).
    pub fn start(wait: Duration) -> FakeBroker {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let (mark, marked) = mpsc::channel();
        let thread = std::thread::spawn(move || serve(listener, port, wait, marked));
        FakeBroker { port, mark, thread }
    }

    /// `127.0.0.1:port`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the clock for [`Ending::Closed`]: call just before making the client close.
    pub fn mark(&self) {
        let _ = self.mark.send(Instant::now());
    }

    /// Waits for the connection's end.
    pub fn ending(self) -> Ending {
        self.thread
            .join()
            .unwrap_or_else(|_| Ending::Failed("fake broker thread panicked".into()))
    }
}

fn serve(
    listener: TcpListener,
    port: u16,
    wait: Duration,
    marked: mpsc::Receiver<Instant>,
) -> Ending {
    // Accept with a bound: a client that never connects must not hang the test.
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let accept_by = Instant::now() + wait;
    let mut stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < accept_by => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Ending::Failed(format!("no connection: {e}")),
        }
    };
    stream.set_nonblocking(false).expect("blocking stream");
    // Short reads, so that the mark is noticed while the client is idle.
    stream
        .set_read_timeout(Some(Duration::from_millis(20)))
        .expect("read timeout");
    let mut since: Option<Instant> = None;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if since.is_none() {
            since = marked.try_recv().ok();
        }
        if let Some(t) = since.filter(|t| t.elapsed() >= wait) {
            return Ending::StillOpen(t.elapsed());
        }
        let closed = match stream.read(&mut chunk) {
            Ok(0) => true,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                false
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
            Err(e) => return Ending::Failed(format!("read: {e}")),
        };
        if closed {
            return match since.or_else(|| marked.try_recv().ok()) {
                Some(t) => Ending::Closed(t.elapsed()),
                None => Ending::Failed("the client closed the connection unasked".into()),
            };
        }
        while buf.len() >= 4 {
            let len = i32::from_be_bytes(buf[..4].try_into().expect("4 bytes")) as usize;
            if buf.len() < 4 + len {
                break;
            }
            let frame: Vec<u8> = buf.drain(..4 + len).skip(4).collect();
            if let Err(e) = answer(&mut stream, port, frame) {
                return Ending::Failed(e);
            }
        }
    }
}

fn answer(stream: &mut TcpStream, port: u16, frame: Vec<u8>) -> Result<(), String> {
    let (header, body) = decode_request_frame(frame.into()).map_err(|e| format!("request: {e}"))?;
    let version = header.request_api_version;
    let mut out = Vec::new();
    match body {
        RequestBody::ApiVersions(_) => {
            let api = |key: ApiKey| {
                let (min, max) = key.request_versions();
                ApiVersion {
                    api_key: key.as_i16(),
                    min_version: min,
                    max_version: max,
                    ..Default::default()
                }
            };
            let resp = ApiVersionsResponse {
                api_keys: vec![api(ApiKey::ApiVersions), api(ApiKey::Metadata)],
                ..Default::default()
            };
            encode_response(header.correlation_id, &resp, version, &mut out)
        }
        RequestBody::Metadata(_) => {
            let resp = MetadataResponse {
                brokers: vec![MetadataResponseBroker {
                    node_id: 0,
                    host: "127.0.0.1".into(),
                    port: port.into(),
                    ..Default::default()
                }],
                controller_id: 0,
                ..Default::default()
            };
            encode_response(header.correlation_id, &resp, version, &mut out)
        }
        other => return Err(format!("cannot answer {other:?}")),
    }
    .map_err(|e| format!("encoding a response: {e}"))?;
    let mut framed = (out.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&out);
    stream.write_all(&framed).map_err(|e| format!("write: {e}"))
}
