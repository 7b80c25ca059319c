//! Integration tests driving the real binary.
