//! Storage benchmarks (placeholder).
fn main() {}
