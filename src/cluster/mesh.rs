//! Reads what an Istio control plane publishes in ConfigMaps, under the names `crate::istio`
//! gives them: the mesh config, the injector values and the root certificate. Each reader
//! returns `None` when the ConfigMap or its key is absent; the caller decides what that means.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client};

use super::KubeError;
use crate::istio::{
    INJECTOR_VALUES_KEY, MESH_CONFIG_KEY, ROOT_CERT_CONFIGMAP, ROOT_CERT_KEY,
    injector_configmap_name, mesh_configmap_name,
};

/// The `mesh` key of ConfigMap `istio[-<rev>]` in the control plane's namespace.
pub async fn mesh_config(
    client: &Client,
    istio_namespace: &str,
    revision: &str,
) -> Result<Option<String>, KubeError> {
    let name = mesh_configmap_name(revision);
    config_map_key(client, istio_namespace, &name, MESH_CONFIG_KEY).await
}

/// The `values` key of ConfigMap `istio-sidecar-injector[-<rev>]` in the control plane's
/// namespace.
pub async fn injector_values(
    client: &Client,
    istio_namespace: &str,
    revision: &str,
) -> Result<Option<String>, KubeError> {
    let name = injector_configmap_name(revision);
    config_map_key(client, istio_namespace, &name, INJECTOR_VALUES_KEY).await
}

/// The mesh root certificate istiod publishes in `namespace` (ConfigMap `istio-ca-root-cert`).
pub async fn root_cert(client: &Client, namespace: &str) -> Result<Option<String>, KubeError> {
    config_map_key(client, namespace, ROOT_CERT_CONFIGMAP, ROOT_CERT_KEY).await
}

async fn config_map_key(
    client: &Client,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<Option<String>, KubeError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let Some(config_map) = api.get_opt(name).await? else {
        return Ok(None);
    };
    Ok(config_map.data.and_then(|mut data| data.remove(key)))
}
