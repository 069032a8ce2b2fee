//! Sandbox tests (filled in below).
mod common;
