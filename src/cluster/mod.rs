//! Kubernetes plumbing shared by every resource: client construction from the provider
//! configuration, server-side apply with conflict reporting, and watch-based waits.

pub mod apply;
pub mod cache;
pub mod client;
pub mod connection;
pub mod discovery;
pub mod error;
pub mod list;
pub mod mesh;
#[cfg(test)]
pub(crate) mod mock;
pub mod wait;

pub use client::{ConnectionSettings, ExecSettings};
pub use error::{KubeError, Setting};
