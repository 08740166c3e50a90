//! Every call of the Service resource to the API server.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::Resource as _;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;

use super::convert::service_from_model;
use super::endpoints::count;
use super::{EndpointSummary, MeshServiceModel};
use crate::cluster::KubeError;
use crate::cluster::apply::server_side_apply;
use crate::cluster::error::ignore_not_found;
use crate::cluster::list::list_in_pages;
use crate::cluster::wait::{Deadline, delete_and_wait, wait_for_sets};
use crate::istio::crd::WorkloadEntry;
use crate::provider_data::Configured;
use crate::resources::error::ResourceError;

/// The Services of one namespace, and what serves behind them.
pub(super) struct Services {
    client: kube::Client,
    api: Api<Service>,
    pub namespace: String,
}

impl Services {
    pub fn new(configured: &Configured, namespace: String) -> Self {
        let client = configured.client.clone();
        Services {
            api: Api::namespaced(client.clone(), &namespace),
            client,
            namespace,
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %self.namespace, name))]
    pub async fn exists(&self, name: &str) -> Result<bool, ResourceError> {
        Ok(self.get(name).await?.is_some())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %self.namespace, name))]
    pub async fn get(&self, name: &str) -> Result<Option<Service>, ResourceError> {
        Ok(self.api.get_opt(name).await?)
    }

    /// Server-side apply of the fields the model sets; returns the Service as stored.
    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %self.namespace, name = %model.name))]
    pub async fn apply(
        &self,
        model: &MeshServiceModel,
        field_manager: &str,
    ) -> Result<Service, ResourceError> {
        let service = service_from_model(model);
        let force = model.apply.force_conflicts.unwrap_or(false);
        Ok(server_side_apply(&self.api, &model.name, &service, field_manager, force).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %self.namespace, name))]
    pub async fn delete(&self, name: &str, deadline: Deadline<'_>) -> Result<(), ResourceError> {
        Ok(delete_and_wait(&self.api, Service::KIND, name, deadline).await?)
    }

    /// Counts what serves now, with one list of each kind.
    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %self.namespace, service))]
    pub async fn count_endpoints(
        &self,
        service: &str,
        selector: &BTreeMap<String, String>,
    ) -> Result<EndpointSummary, ResourceError> {
        let slices: Api<EndpointSlice> = Api::namespaced(self.client.clone(), &self.namespace);
        let entries: Api<WorkloadEntry> = Api::namespaced(self.client.clone(), &self.namespace);
        let slices = list_in_pages(&slices, &slices_of(service)).await?;
        let entries = list_in_pages(&entries, &selector_string(selector)).await;
        // A cluster without Istio's CRDs has no VMs to count.
        let entries = ignore_not_found(entries)?.unwrap_or_default();
        Ok(count(slices.iter(), entries.iter()))
    }

    /// Watches the Service's EndpointSlices and the WorkloadEntries its selector matches until
    /// `wanted` endpoints serve; on timeout or cancellation the error comes with what was found.
    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %self.namespace, service, wanted, timeout_seconds = deadline.timeout.as_secs()))]
    pub async fn wait_for_endpoints(
        &self,
        service: &str,
        selector: &BTreeMap<String, String>,
        wanted: i64,
        deadline: Deadline<'_>,
    ) -> Result<EndpointSummary, (KubeError, EndpointSummary)> {
        let slices: Api<EndpointSlice> = Api::namespaced(self.client.clone(), &self.namespace);
        let entries: Api<WorkloadEntry> = Api::namespaced(self.client.clone(), &self.namespace);
        let what = format!(
            "{wanted} healthy endpoint(s) of Service {}/{service}",
            self.namespace
        );
        let summary = |slices: &[Arc<EndpointSlice>], entries: &[Arc<WorkloadEntry>]| {
            count(
                slices.iter().map(Arc::as_ref),
                entries.iter().map(Arc::as_ref),
            )
        };
        let enough = |summary: &EndpointSummary| summary.healthy >= wanted;
        wait_for_sets(
            (&slices, &slices_of(service)),
            (&entries, &selector_string(selector)),
            summary,
            enough,
            deadline,
            &what,
        )
        .await
    }
}

/// Label selector of the EndpointSlices Kubernetes keeps for a Service.
fn slices_of(service: &str) -> String {
    format!("kubernetes.io/service-name={service}")
}

fn selector_string(selector: &BTreeMap<String, String>) -> String {
    selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}
