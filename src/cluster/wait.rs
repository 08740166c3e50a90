//! Watch-based waits (never a polling loop): each wait ends on the condition, on its
//! deadline, or when Terraform asks the provider to stop.

use std::time::Duration;

use kube::api::Api;
use kube::runtime::wait::{Condition, await_condition, conditions};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use super::KubeError;

/// Waits until `condition` holds for the named object; returns the object seen last.
pub async fn wait_for<K>(
    api: &Api<K>,
    name: &str,
    condition: impl Condition<K>,
    timeout: Duration,
    cancel: &CancellationToken,
    what: &str,
) -> Result<Option<K>, KubeError>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let watch = await_condition(api.clone(), name, condition);
    tokio::select! {
        _ = cancel.cancelled() => Err(KubeError::Cancelled(what.to_string())),
        result = tokio::time::timeout(timeout, watch) => match result {
            Err(_) => Err(KubeError::Timeout { what: what.to_string(), seconds: timeout.as_secs() }),
            Ok(Err(error)) => Err(KubeError::Watch { what: what.to_string(), detail: error.to_string() }),
            Ok(Ok(object)) => Ok(object),
        },
    }
}

/// Waits until the object with `uid` is gone (finalizers done, garbage collected).
pub async fn wait_until_deleted<K>(
    api: &Api<K>,
    name: &str,
    uid: &str,
    timeout: Duration,
    cancel: &CancellationToken,
    what: &str,
) -> Result<(), KubeError>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    wait_for(
        api,
        name,
        conditions::is_deleted(uid),
        timeout,
        cancel,
        what,
    )
    .await
    .map(|_| ())
}

/// Waits until some object matching `label_selector` satisfies `done`. On timeout or
/// cancellation the error is returned together with the last matching object seen, so the
/// caller can say what state things were in.
pub async fn wait_for_matching<K>(
    api: &Api<K>,
    label_selector: &str,
    done: impl Fn(&K) -> bool,
    timeout: Duration,
    cancel: &CancellationToken,
    what: &str,
) -> Result<K, (KubeError, Option<K>)>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};

    let mut last_seen: Option<K> = None;
    let stream = watcher(
        api.clone(),
        watcher::Config::default().labels(label_selector),
    )
    .applied_objects();
    let mut stream = std::pin::pin!(stream);
    let deadline = tokio::time::sleep(timeout);
    let mut deadline = std::pin::pin!(deadline);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Err((KubeError::Cancelled(what.to_string()), last_seen)),
            _ = &mut deadline => {
                return Err((KubeError::Timeout { what: what.to_string(), seconds: timeout.as_secs() }, last_seen));
            }
            event = stream.next() => match event {
                Some(Ok(object)) => {
                    if done(&object) {
                        return Ok(object);
                    }
                    last_seen = Some(object);
                }
                // The watcher re-lists and resumes by itself; a transient error is not fatal.
                Some(Err(error)) => tracing::debug!(%error, "watch error while waiting for {what}"),
                None => return Err((KubeError::Watch { what: what.to_string(), detail: "watch ended".into() }, last_seen)),
            }
        }
    }
}
