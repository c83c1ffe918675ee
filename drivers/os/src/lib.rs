//! # kafkit-os
//!
//! What kafkit's socket drivers (`kafkit-tokio`, `kafkit-smol`, `kafkit-blocking`) take from
//! the operating system, written once: the OS's randomness as the core's [`Entropy`]
//! ([`OsEntropy`]), the [`DriverEnv`] they build configurations with ([`driver_env`]: the
//! ring crypto provider, the OS's root certificates, file reading), and a blocking TCP
//! connect with the configured socket options ([`connect_std`]). An embedder that drives a
//! core from its own loop can use these too.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;

use kafkit_core::driver::SocketOptions;
use kafkit_core::network::{DriverEnv, Entropy};
use socket2::{Domain, Socket, Type};

/// The operating system's randomness (`getrandom(2)` on Linux), for SCRAM nonces and the
/// seed of the core's generator.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, dest: &mut [u8]) {
        if getrandom::getrandom(dest).is_err() {
            // The OS refused (it has no randomness source at all, which a booted Linux,
            // macOS or Windows never does). std's hasher keys come from the OS too, drawn
            // once per thread and stepped per map; mixed with the time they are still
            // unpredictable from outside, and never derived from the core's seed.
            fallback_fill(dest);
        }
    }
}

fn fallback_fill(dest: &mut [u8]) {
    use std::hash::BuildHasher;
    let state = std::collections::hash_map::RandomState::new();
    for (i, chunk) in dest.chunks_mut(8).enumerate() {
        let word = state.hash_one((i, std::time::SystemTime::now()));
        chunk.copy_from_slice(&word.to_le_bytes()[..chunk.len()]);
    }
}

/// Loads the OS's root certificates (those it could read; unreadable ones are skipped, as
/// rustls-native-certs reports them).
fn system_roots() -> Vec<rustls::pki_types::CertificateDer<'static>> {
    rustls_native_certs::load_native_certs().certs
}

/// The environment the socket drivers give the core: [`OsEntropy`], the ring crypto
/// provider with the OS's root certificates for TLS, and `std::fs::read` for `ssl_cafile`
/// and friends.
pub fn driver_env() -> DriverEnv {
    DriverEnv::new(Arc::new(OsEntropy))
        .with_tls(
            Arc::new(rustls::crypto::ring::default_provider()),
            system_roots,
        )
        .with_file_reader(|path| std::fs::read(path))
}

/// Resolves `host` (blocking the calling thread on the lookup) and connects to each address
/// in turn with `opts`' buffer sizes, TCP_NODELAY and connect timeout. The error names the
/// host or the last address tried.
pub fn connect_std(host: &str, port: u16, opts: &SocketOptions) -> Result<TcpStream, String> {
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut last = format!("{host} resolved to no address");
    for addr in addrs {
        let attempt = || -> std::io::Result<TcpStream> {
            let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
            if let Some(size) = opts.send_buffer {
                sock.set_send_buffer_size(size as usize)?;
            }
            if let Some(size) = opts.receive_buffer {
                sock.set_recv_buffer_size(size as usize)?;
            }
            sock.set_nodelay(true)?;
            sock.connect_timeout(&addr.into(), opts.connect_timeout)?;
            Ok(sock.into())
        };
        match attempt() {
            Ok(stream) => return Ok(stream),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_entropy_differs_between_draws() {
        let (mut a, mut b) = ([0u8; 24], [0u8; 24]);
        OsEntropy.fill(&mut a);
        OsEntropy.fill(&mut b);
        assert_ne!(a, b);
        let (mut c, mut d) = ([0u8; 24], [0u8; 24]);
        fallback_fill(&mut c);
        fallback_fill(&mut d);
        assert_ne!(c, d);
    }

    #[test]
    fn refused_connections_name_the_address() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let err = connect_std("127.0.0.1", port, &SocketOptions::default()).unwrap_err();
        assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
        let err = connect_std("no-such-host.invalid", 9092, &SocketOptions::default()).unwrap_err();
        assert!(err.contains("cannot resolve no-such-host.invalid"), "{err}");
    }
}
