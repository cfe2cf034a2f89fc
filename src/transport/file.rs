//! File transport (placeholder, being written).
