//! Hyperion's end-to-end suite. The crate holds no library code: the tests in `tests/` spawn
//! the `hyperion` binary (built by `cargo build --workspace`, or named by `HYPERION_BIN`) on
//! free local ports and drive it through its CLI and JSON-RPC, as a user would.
