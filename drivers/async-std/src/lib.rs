//! kafkit driver for async-std.
