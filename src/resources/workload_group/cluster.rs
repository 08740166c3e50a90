//! Every call of the WorkloadGroup resource to the API server.

use std::time::Duration;

use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject};

use super::WorkloadGroupModel;
use super::convert::object_from_model;
use crate::cluster::KubeError;
use crate::cluster::apply::server_side_apply;
use crate::cluster::wait::wait_until_deleted;
use crate::istio::crd::{IstioApiVersion, WorkloadGroup, from_dynamic, to_dynamic};
use crate::provider_data::Configured;
use crate::tfplug::Ctx;

pub(super) fn dynamic_api(
    client: &Client,
    namespace: &str,
    version: IstioApiVersion,
) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        namespace,
        &version.api_resource("WorkloadGroup"),
    )
}

pub(super) async fn apply(
    api: &Api<DynamicObject>,
    model: &WorkloadGroupModel,
    namespace: &str,
    version: IstioApiVersion,
    configured: &Configured,
) -> Result<WorkloadGroup, KubeError> {
    let object = to_dynamic(&object_from_model(model, namespace), version).map_err(|e| {
        KubeError::InvalidSetting {
            attribute: "name",
            message: e.to_string(),
        }
    })?;
    let force = model.force_conflicts.unwrap_or(false);
    let applied = server_side_apply(api, &model.name, &object, &configured.field_manager, force)
        .await
        .map_err(|error| with_kind(error, namespace))?;
    from_dynamic(applied).map_err(|e| KubeError::Watch {
        what: "the applied WorkloadGroup".into(),
        detail: e.to_string(),
    })
}

fn with_kind(error: KubeError, namespace: &str) -> KubeError {
    match error {
        KubeError::Conflict {
            name,
            managers,
            detail,
            ..
        } => KubeError::Conflict {
            kind: "WorkloadGroup".into(),
            namespace: namespace.into(),
            name,
            managers,
            detail,
        },
        other => other,
    }
}

pub(super) async fn fetch(
    client: &Client,
    namespace: &str,
    name: &str,
    version: IstioApiVersion,
) -> Result<Option<WorkloadGroup>, KubeError> {
    let api = dynamic_api(client, namespace, version);
    match api.get_opt(name).await? {
        Some(object) => from_dynamic(object)
            .map(Some)
            .map_err(|e| KubeError::Watch {
                what: format!("WorkloadGroup {namespace}/{name}"),
                detail: e.to_string(),
            }),
        None => Ok(None),
    }
}

pub(super) async fn delete_and_wait(
    api: &Api<DynamicObject>,
    name: &str,
    timeout: Duration,
    ctx: &Ctx,
) -> Result<(), KubeError> {
    let uid = match api.get_opt(name).await? {
        Some(object) => object.metadata.uid.unwrap_or_default(),
        None => return Ok(()),
    };
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
        Err(other) => return Err(other.into()),
    }
    wait_until_deleted(
        api,
        name,
        &uid,
        timeout,
        &ctx.cancelled,
        &format!("WorkloadGroup {name} to be deleted"),
    )
    .await
}
