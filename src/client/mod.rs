//! The client package store: the records and cache of `sft client`.
