//! API discovery: which version of an API the cluster serves.

use kube::Client;

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
