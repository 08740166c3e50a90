//! Server-side apply with the provider's field manager. A conflict with another manager is
//! turned into an error that names that manager and the fields, so the user knows who else
//! owns the object and can opt into `force_conflicts`.

use kube::api::{Api, Patch, PatchParams};
use kube::core::Status;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::KubeError;

/// Applies `object` (a full apply configuration: only the fields we own) and returns the
/// object as the API server stored it.
pub async fn server_side_apply<K>(
    api: &Api<K>,
    name: &str,
    object: &(impl Serialize + std::fmt::Debug),
    field_manager: &str,
    force_conflicts: bool,
) -> Result<K, KubeError>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut params = PatchParams::apply(field_manager);
    if force_conflicts {
        params = params.force();
    }
    match api.patch(name, &params, &Patch::Apply(object)).await {
        Ok(applied) => Ok(applied),
        Err(kube::Error::Api(status)) if status.code == 409 => Err(conflict_error(&status, name)),
        Err(other) => Err(KubeError::Api(other)),
    }
}

/// The 409 message lists conflicts as `conflict with "manager" using v1: .spec.x` lines;
/// we keep the managers' names and the whole message as detail.
fn conflict_error(status: &Status, name: &str) -> KubeError {
    let managers = conflicting_managers(&status.message);
    KubeError::Conflict {
        kind: status.reason.clone(),
        namespace: String::new(),
        name: name.to_string(),
        managers: if managers.is_empty() {
            "unknown".into()
        } else {
            managers.join(", ")
        },
        detail: status.message.clone(),
    }
}

fn conflicting_managers(message: &str) -> Vec<String> {
    let mut managers: Vec<String> = message
        .split("conflict with \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect();
    managers.sort();
    managers.dedup();
    managers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managers_are_extracted_from_the_conflict_message() {
        let message = "Apply failed with 2 conflicts: conflict with \"kubectl-edit\" using networking.istio.io/v1: .spec.template.serviceAccount\nconflict with \"helm\" using networking.istio.io/v1: .spec.probe.periodSeconds";
        assert_eq!(
            conflicting_managers(message),
            vec!["helm".to_string(), "kubectl-edit".to_string()]
        );
    }

    #[test]
    fn a_message_without_conflicts_yields_no_managers() {
        assert!(conflicting_managers("something else").is_empty());
    }
}
