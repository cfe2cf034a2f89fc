//! Extracting packages to a directory (placeholder, being written).
