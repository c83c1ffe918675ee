//! kafkit driver for blocking.
