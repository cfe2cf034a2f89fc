//! The sans-IO streaming core (placeholder, being written).
