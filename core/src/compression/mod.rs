//! Compression codecs for record batches (filled by the records work).
