//! The one error type of the resources: what went wrong, and the attribute the user can change
//! to fix it. [`ResourceError::report`] is the only way a resource error reaches Terraform.

use crate::cluster::KubeError;
use crate::istio::IstioError;
use crate::tfplug::{AttributePath, Diagnostics};

/// A failed step of a resource operation.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct ResourceError {
    /// The attribute the diagnostic points at; `None` for the resource as a whole.
    pub attribute: Option<&'static str>,
    pub kind: ErrorKind,
}

/// What went wrong. Each message says what happened and, where the user can act, what to do.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// The API server refused or failed a call.
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// What the cluster holds cannot be turned into the Istio objects or files asked for.
    #[error(transparent)]
    Istio(#[from] IstioError),
    /// Files on the machine running Terraform could not be written or removed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A wait ended (deadline, cancellation, failed watch) before its condition held.
    #[error("{cause}. {last_state}")]
    Timeout {
        cause: KubeError,
        last_state: String,
    },
    /// Something the resource needs does not exist.
    #[error("{0}")]
    Missing(String),
}

impl ResourceError {
    /// An error on `attribute`, or on the whole resource when `None`.
    pub fn new(attribute: Option<&'static str>, kind: impl Into<ErrorKind>) -> Self {
        ResourceError {
            attribute,
            kind: kind.into(),
        }
    }

    /// Something needed is missing; `message` says what and what to do.
    pub fn missing(attribute: Option<&'static str>, message: impl Into<String>) -> Self {
        ResourceError::new(attribute, ErrorKind::Missing(message.into()))
    }

    /// A wait that ended with `cause`; `last_state` says what it saw last.
    pub fn timeout(attribute: &'static str, cause: KubeError, last_state: String) -> Self {
        ResourceError::new(Some(attribute), ErrorKind::Timeout { cause, last_state })
    }

    /// The same error, blamed on `attribute`.
    pub fn on(self, attribute: &'static str) -> Self {
        ResourceError {
            attribute: Some(attribute),
            ..self
        }
    }

    /// Adds the error to `diags` as one diagnostic: `summary` names the operation that failed
    /// (e.g. "Cannot create WorkloadGroup"), the detail is the error's message, and it points
    /// at the attribute when one is to blame.
    pub fn report(self, summary: &str, diags: &mut Diagnostics) {
        let detail = self.kind.to_string();
        match self.attribute {
            Some(attribute) => diags.error(summary, detail, AttributePath::new(attribute)),
            None => diags.root_error(summary, detail),
        }
    }
}

impl From<KubeError> for ResourceError {
    fn from(error: KubeError) -> Self {
        ResourceError::new(None, error)
    }
}

impl From<kube::Error> for ResourceError {
    fn from(error: kube::Error) -> Self {
        ResourceError::new(None, KubeError::from(error))
    }
}

impl From<IstioError> for ResourceError {
    fn from(error: IstioError) -> Self {
        ResourceError::new(None, error)
    }
}

/// `?`-friendly reporting: `step.await.or_report("Cannot create Service", diags)?`.
pub trait OrReport<T> {
    /// `Some(value)`, or `None` after reporting the error with [`ResourceError::report`].
    fn or_report(self, summary: &str, diags: &mut Diagnostics) -> Option<T>;
}

impl<T, E: Into<ResourceError>> OrReport<T> for Result<T, E> {
    fn or_report(self, summary: &str, diags: &mut Diagnostics) -> Option<T> {
        match self {
            Ok(value) => Some(value),
            Err(error) => {
                error.into().report(summary, diags);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tfplug::AttributePath;

    #[test]
    fn an_error_on_an_attribute_points_at_it() {
        let mut diags = Diagnostics::new();
        ResourceError::missing(
            Some("workload_group"),
            "WorkloadGroup default/g does not exist",
        )
        .report("VM registration failed", &mut diags);
        let diagnostic = diags.errors().next().unwrap();
        assert_eq!(diagnostic.summary, "VM registration failed");
        assert_eq!(diagnostic.detail, "WorkloadGroup default/g does not exist");
        assert_eq!(diagnostic.path, Some(AttributePath::new("workload_group")));
    }

    #[test]
    fn a_timeout_says_what_it_saw_last_and_is_not_an_invalid_setting() {
        let mut diags = Diagnostics::new();
        let cause = KubeError::Timeout {
            what: "istiod to report the VM healthy".into(),
            seconds: 5,
        };
        let result: Result<(), _> = Err(ResourceError::timeout(
            "wait_for_healthy",
            cause,
            "Last state: no entry".into(),
        ));
        assert_eq!(result.or_report("VM registration failed", &mut diags), None);
        let diagnostic = diags.errors().next().unwrap();
        assert_eq!(
            diagnostic.detail,
            "timed out after 5s waiting for istiod to report the VM healthy. Last state: no entry"
        );
        assert!(
            !diagnostic.detail.contains("invalid"),
            "{}",
            diagnostic.detail
        );
        assert_eq!(
            diagnostic.path,
            Some(AttributePath::new("wait_for_healthy"))
        );
    }

    #[test]
    fn an_error_without_attribute_is_on_the_resource() {
        let mut diags = Diagnostics::new();
        let result: Result<(), KubeError> = Err(KubeError::Cancelled("the delete".into()));
        assert_eq!(result.or_report("Cannot delete Service", &mut diags), None);
        assert_eq!(diags.errors().next().unwrap().path, None);
    }
}
