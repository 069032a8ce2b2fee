//! SkyPilot's twelve utility functions as pure Rust logic.
//!
//! The same code builds natively (unit tests, native baselines) and for
//! `wasm32-wasip2`, where [`component`] exports it through the
//! `skypilot:utils` WIT world. Every policy lives here; hosts only supply raw
//! facts ([`system::Facts`]), the environment and the filesystem.

#![warn(missing_docs)]

pub mod error;
pub mod files;
pub mod pynum;
pub mod pyrepr;
pub mod system;
pub mod text;
mod unicode_tables;

#[cfg(target_family = "wasm")]
mod component;

pub use error::{Error, OsError, Result};
