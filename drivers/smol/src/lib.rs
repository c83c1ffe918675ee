//! kafkit driver for smol.
