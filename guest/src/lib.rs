//! SkyPilot's twelve utility functions as pure Rust logic.
//!
//! The same code builds natively (unit tests, native baselines) and for
//! `wasm32-wasip2`, where [`component`] exports it through the
//! `skypilot:utils` WIT world. Every policy lives here; hosts only supply raw
//! facts ([`system::Facts`]), the environment and the filesystem.

#![warn(missing_docs)]

pub mod files;
pub mod system;
pub mod text;

// The error model and Python's text forms live in `skyutils-common`, shared
// with the host; re-exported under their old paths.
pub use skyutils_common::{error, pynum, pyrepr};

#[cfg(target_family = "wasm")]
mod component;

pub use error::{Error, OsError, Result};
