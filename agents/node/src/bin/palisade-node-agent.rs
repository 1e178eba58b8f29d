//! Standalone node agent; the same entry point as `palisade agent`.
fn main() {}
