//! # commet-store-memory
//!
//! The in-memory store for commet, for tests and for trying commet out. It will hold the same
//! semantics as every other store (versions, conflicts, ordering) and pass the shared
//! conformance suite of `commet-core`.
//!
//! Status: planned. The `Store` trait it implements arrives with the storage issue; until then
//! this crate only reserves its place in the workspace.
