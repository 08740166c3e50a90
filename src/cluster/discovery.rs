//! API discovery: which version of an API the cluster serves, and whether a namespace exists.

use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, Client};

use super::KubeError;
use super::error::is_not_found;
use crate::istio::crd::{IstioApiVersion, WorkloadGroup};

/// The version the cluster serves WorkloadGroups at: `v1` when it serves it, else `v1beta1`
/// (Istio before 1.22 has no v1).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn served_version(client: &Client) -> Result<IstioApiVersion, KubeError> {
    for version in IstioApiVersion::PREFERENCE {
        if serves(client, version).await? {
            return Ok(version);
        }
    }
    let versions = IstioApiVersion::PREFERENCE.map(IstioApiVersion::api_version);
    Err(KubeError::NotServed {
        kind: WorkloadGroup::KIND,
        versions: versions.join(" or "),
    })
}

/// The preferred WorkloadGroup version when the cluster serves it; `None` when it does not (an
/// Istio before 1.22, or none: [`served_version`] says which later). Any answer of the API
/// server, a 404 included, proves the connection and the credentials.
pub async fn serves_preferred_version(
    client: &Client,
) -> Result<Option<IstioApiVersion>, kube::Error> {
    let [preferred, ..] = IstioApiVersion::PREFERENCE;
    Ok(serves(client, preferred).await?.then_some(preferred))
}

/// Whether the discovery document of `version` lists WorkloadGroups (a 404: no).
async fn serves(client: &Client, version: IstioApiVersion) -> Result<bool, kube::Error> {
    let plural = version.api_resource(WorkloadGroup::KIND).plural;
    match client
        .list_api_group_resources(&version.api_version())
        .await
    {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == plural)),
        Err(error) if is_not_found(&error) => Ok(false),
        Err(other) => Err(other),
    }
}

/// Whether the namespace exists. Creates ask first: the API server refuses an object in a
/// missing namespace only after the write was sent.
#[tracing::instrument(level = "debug", skip(client))]
pub async fn namespace_exists(client: &Client, namespace: &str) -> Result<bool, KubeError> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    Ok(namespaces.get_opt(namespace).await?.is_some())
}
