//! kafkit driver for tokio.
