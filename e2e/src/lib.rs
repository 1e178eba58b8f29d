//! End-to-end tests of Palisade across real processes: they start the `palisade` binary (built
//! by `cargo build -p palisade`, which `make test` runs first), talk to it over gRPC with the
//! project's CLI and with clients the project did not write, and kill it.
