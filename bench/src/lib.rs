//! Benchmarks of Palisade against the peers and limits it measures itself by. Each benchmark
//! is a `harness = false` bench target printing a results table; bench/RESULTS.md records them.
