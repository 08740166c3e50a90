//! The one error type of the protocol layer.

use super::diag::AttributePath;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value did not match the schema type at `path`.
    #[error("{path}: {message}")]
    Value {
        path: AttributePath,
        message: String,
    },
    #[error("invalid msgpack: {0}")]
    Msgpack(String),
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid type description: {0}")]
    TypeJson(String),
    #[error("invalid schema model: {0}")]
    Model(String),
    #[error("plugin handshake: {0}")]
    Handshake(String),
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

impl Error {
    pub fn value(path: &AttributePath, message: impl Into<String>) -> Self {
        Error::Value {
            path: path.clone(),
            message: message.into(),
        }
    }

    /// Set elements have no index Terraform could show, so an error inside one points at the
    /// set itself (the first `depth` steps), as terraform-plugin-go does.
    pub(crate) fn at_set(self, depth: usize) -> Self {
        match self {
            Error::Value { mut path, message } => {
                path.steps.truncate(depth);
                Error::Value { path, message }
            }
            other => other,
        }
    }
}
