//! API discovery: which version of an API the cluster serves, and whether a namespace exists.

use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, Client};

use super::KubeError;
use crate::istio::crd::{IstioApiVersion, WorkloadGroup};

/// The version the cluster serves WorkloadGroups at: `v1` when it serves it, else `v1beta1`
/// (Istio before 1.22 has no v1).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn served_version(client: &Client) -> Result<IstioApiVersion, KubeError> {
    for version in IstioApiVersion::PREFERENCE {
        let plural = version.api_resource(WorkloadGroup::KIND).plural;
        match client
            .list_api_group_resources(&version.api_version())
            .await
            .map_err(KubeError::from)
        {
            Ok(list) if list.resources.iter().any(|r| r.name == plural) => {
                return Ok(version);
            }
            Ok(_) => continue,
            Err(error) if error.is_not_found() => continue,
            Err(other) => return Err(other),
        }
    }
    let versions = IstioApiVersion::PREFERENCE.map(IstioApiVersion::api_version);
    Err(KubeError::NotServed {
        kind: WorkloadGroup::KIND,
        versions: versions.join(" or "),
    })
}

/// Whether the namespace exists. Creates ask first: the API server refuses an object in a
/// missing namespace only after the write was sent.
#[tracing::instrument(level = "debug", skip(client))]
pub async fn namespace_exists(client: &Client, namespace: &str) -> Result<bool, KubeError> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    Ok(namespaces.get_opt(namespace).await?.is_some())
}
