//! Entry points for the cargo-fuzz targets.
