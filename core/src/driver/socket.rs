use std::time::Duration;

use crate::config::CommonConfig;

/// What a driver applies to every socket it opens, from the client configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketOptions {
    /// `send_buffer_bytes` (`None`: the OS default).
    pub send_buffer: Option<u32>,
    /// `receive_buffer_bytes` (`None`: the OS default).
    pub receive_buffer: Option<u32>,
    /// The longest a blocking connect may hold its thread
    /// (`socket_connection_setup_timeout_max_ms`); the core enforces its own setup timeout
    /// regardless.
    pub connect_timeout: Duration,
    /// `Some(max_response_size)` when the stream carries Kafka frames in the clear
    /// (`PLAINTEXT`, `SASL_PLAINTEXT`): the driver may then size its reads per frame and hand
    /// the core whole frames ([`crate::network::ReadBuffer::with`]). `None` with TLS, whose
    /// ciphertext the driver cannot frame.
    pub read_framing: Option<usize>,
}

impl SocketOptions {
    /// The socket settings of a configuration.
    pub fn from_config(config: &CommonConfig) -> Self {
        SocketOptions {
            send_buffer: config.send_buffer_bytes,
            receive_buffer: config.receive_buffer_bytes,
            connect_timeout: Duration::from_millis(config.socket_connection_setup_timeout_max_ms),
            read_framing: (!config.security_protocol.uses_tls())
                .then_some(config.max_response_size as usize),
        }
    }
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions::from_config(&CommonConfig::default())
    }
}
