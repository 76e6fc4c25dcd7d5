//! # commet-store-sqlite
//!
//! The SQLite store for commet: one file (or memory), bundled SQLite, embedded migrations,
//! atomic commits. It will pass the shared conformance suite of `commet-core`.
//!
//! Status: planned. The `Store` trait it implements arrives with the storage issue; until then
//! this crate only reserves its place in the workspace.
