//! The Hyperion node.

#![warn(missing_docs)]
