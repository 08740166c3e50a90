//! tfplug: our Terraform plugin protocol 6 layer on tonic + prost. It knows nothing of Istio.
//!
//! Resources implement [`Resource`] against schema-typed [`Value`]s (or typed models through
//! [`decode`]/[`encode`]); the binary's `main` calls [`install_crypto_provider`] early and then
//! [`serve`].

mod bridge;
pub mod codec;
mod diag;
mod ephemeral;
mod error;
pub(crate) mod proto;
mod provider;
mod resource;
pub mod schema;
mod types;
mod value;

pub use bridge::{decode, encode, null_as_default};
pub use diag::{AttributePath, Diagnostic, Diagnostics, PathStep, Severity};
pub use ephemeral::{EphemeralResource, Opened, Renewed};
pub use error::Error;
pub use provider::Provider;
pub use resource::{Ctx, DataSource, Plan, Resource, default_plan, plan_replacements};
pub use schema::{Attribute, Block, HasType, NestedBlock, Nesting, Schema, provider_schema_json};
pub use types::Type;
pub use value::{Number, UnknownAs, Value};

mod log;
mod rpc;
mod server;
mod tls;

pub use log::level_from_env as log_level_from_env;
pub use server::{
    MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, MAX_MESSAGE_SIZE, Mode, debug_instructions,
    handshake_line, run, serve,
};
pub use tls::install_crypto_provider;
