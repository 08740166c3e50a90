//! Every call of the Service resource to the API server.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

use super::EndpointSummary;
use super::endpoints::count;
use crate::cluster::KubeError;
use crate::istio::crd::WorkloadEntry;

fn selector_string(selector: &BTreeMap<String, String>) -> String {
    selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Counts what serves now, with one list of each kind.
pub(super) async fn summarise(
    client: &kube::Client,
    namespace: &str,
    service: &str,
    selector: &BTreeMap<String, String>,
) -> Result<EndpointSummary, KubeError> {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    let entries: Api<WorkloadEntry> = Api::namespaced(client.clone(), namespace);
    let slices = slices
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={service}")))
        .await?
        .items;
    let entries = match entries
        .list(&ListParams::default().labels(&selector_string(selector)))
        .await
    {
        Ok(list) => list.items,
        // A cluster without Istio's CRDs has no VMs to count.
        Err(kube::Error::Api(status)) if status.code == 404 => Vec::new(),
        Err(other) => return Err(other.into()),
    };
    Ok(count(slices.iter(), entries.iter()))
}

/// Watches EndpointSlices of the Service and WorkloadEntries matching the selector until
/// enough serve; never polls.
pub(super) async fn wait_for_endpoints(
    client: &kube::Client,
    namespace: &str,
    service: &str,
    selector: &BTreeMap<String, String>,
    wanted: i64,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<EndpointSummary, (KubeError, EndpointSummary)> {
    use futures::StreamExt;
    let slices_api: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    let entries_api: Api<WorkloadEntry> = Api::namespaced(client.clone(), namespace);
    let slice_stream = watcher(
        slices_api,
        watcher::Config::default().labels(&format!("kubernetes.io/service-name={service}")),
    );
    let entry_stream = watcher(
        entries_api,
        watcher::Config::default().labels(&selector_string(selector)),
    );
    let mut slice_stream = std::pin::pin!(slice_stream);
    let mut entry_stream = std::pin::pin!(entry_stream);
    let mut slices: BTreeMap<String, EndpointSlice> = BTreeMap::new();
    let mut entries: BTreeMap<String, WorkloadEntry> = BTreeMap::new();
    let deadline = tokio::time::sleep(timeout);
    let mut deadline = std::pin::pin!(deadline);
    let what = format!("{wanted} healthy endpoint(s) of Service {namespace}/{service}");
    loop {
        let summary = count(slices.values(), entries.values());
        if summary.healthy >= wanted {
            return Ok(summary);
        }
        tokio::select! {
            _ = cancel.cancelled() => return Err((KubeError::Cancelled(what), summary)),
            _ = &mut deadline => return Err((KubeError::Timeout { what, seconds: timeout.as_secs() }, summary)),
            Some(event) = slice_stream.next() => track(&mut slices, event),
            Some(event) = entry_stream.next() => track(&mut entries, event),
        }
    }
}

fn track<K: kube::Resource>(
    objects: &mut BTreeMap<String, K>,
    event: Result<watcher::Event<K>, watcher::Error>,
) {
    let name = |object: &K| object.meta().name.clone().unwrap_or_default();
    match event {
        Ok(watcher::Event::Apply(object)) | Ok(watcher::Event::InitApply(object)) => {
            objects.insert(name(&object), object);
        }
        Ok(watcher::Event::Delete(object)) => {
            objects.remove(&name(&object));
        }
        Ok(watcher::Event::Init) => objects.clear(),
        Ok(watcher::Event::InitDone) => {}
        Err(error) => tracing::debug!(%error, "watch error while counting endpoints"),
    }
}
