//! Every wait of the provider, watch-based (never a polling loop). Each wait ends on its
//! condition, on its deadline, or when Terraform asks the provider to stop (StopProvider).
//! Watches back off after errors (`default_backoff`), so a persistent error such as a 403 does
//! not spin until the deadline; the watcher re-lists and resumes by itself.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::api::{Api, DeleteParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::wait::delete::{Error as DeleteError, delete_and_finalize};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use super::KubeError;

/// Objects a wait can watch.
pub trait Watched:
    kube::Resource<DynamicType = ()>
    + Clone
    + DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> Watched for K where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static
{
}

/// Deletes the named object and waits until it is gone, finalizers included (kube-runtime's
/// `delete_and_finalize`), within `timeout` and until cancelled. An object that is already
/// gone is not an error. `what` names the object in errors, e.g. "Service default/product".
pub async fn delete_and_wait<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    cancel: &CancellationToken,
    what: &str,
) -> Result<(), KubeError>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let what = format!("{what} to be deleted");
    let deleted = async {
        match delete_and_finalize(api.clone(), name, &DeleteParams::default()).await {
            Ok(()) => Ok(()),
            Err(DeleteError::Delete(error)) => match KubeError::from(error) {
                gone if gone.is_not_found() => Ok(()),
                other => Err(other),
            },
            Err(other) => Err(KubeError::Watch {
                what: what.clone(),
                detail: other.to_string(),
            }),
        }
    };
    within(timeout, cancel, &what, deleted).await
}

/// Watches the objects matching `label_selector` until `done(judge(objects))`; returns that
/// judgement, or on deadline, cancellation or a failed watch the error with the last judgement,
/// so the caller can say what it saw.
pub async fn wait_for_set<K: Watched, T>(
    api: &Api<K>,
    label_selector: &str,
    judge: impl Fn(&[Arc<K>]) -> T,
    done: impl Fn(&T) -> bool,
    timeout: Duration,
    cancel: &CancellationToken,
    what: &str,
) -> Result<T, (KubeError, T)> {
    let (objects, changes) = reflect(api, label_selector, what);
    let judge_now = || judge(&objects.state());
    wait_on(changes, judge_now, done, timeout, cancel, what).await
}

/// Like [`wait_for_set`] over two sets at once (e.g. EndpointSlices and WorkloadEntries).
pub async fn wait_for_sets<A: Watched, B: Watched, T>(
    first: (&Api<A>, &str),
    second: (&Api<B>, &str),
    judge: impl Fn(&[Arc<A>], &[Arc<B>]) -> T,
    done: impl Fn(&T) -> bool,
    timeout: Duration,
    cancel: &CancellationToken,
    what: &str,
) -> Result<T, (KubeError, T)> {
    let (first_objects, first_changes) = reflect(first.0, first.1, what);
    let (second_objects, second_changes) = reflect(second.0, second.1, what);
    let changes = futures::stream::select(first_changes, second_changes);
    let judge_now = || judge(&first_objects.state(), &second_objects.state());
    wait_on(changes, judge_now, done, timeout, cancel, what).await
}

/// A store of the objects matching `label_selector`, kept current by a watch with backoff, and
/// the stream that drives it (one item per change).
fn reflect<K: Watched>(
    api: &Api<K>,
    label_selector: &str,
    what: &str,
) -> (Store<K>, impl Stream<Item = ()> + Send + use<K>) {
    let (reader, writer) = reflector::store();
    let what = what.to_string();
    let config = watcher::Config::default().labels(label_selector);
    let changes = watcher(api.clone(), config)
        .default_backoff()
        .reflect(writer)
        .map(move |event| {
            if let Err(error) = event {
                tracing::debug!(%error, "watch error while waiting for {what}; retrying");
            }
        });
    (reader, changes)
}

/// Judges after every change until `done`, the deadline or cancellation.
async fn wait_on<T>(
    changes: impl Stream<Item = ()>,
    judge: impl Fn() -> T,
    done: impl Fn(&T) -> bool,
    timeout: Duration,
    cancel: &CancellationToken,
    what: &str,
) -> Result<T, (KubeError, T)> {
    let mut changes = pin!(changes);
    let mut deadline = pin!(tokio::time::sleep(timeout));
    loop {
        let judgement = judge();
        if done(&judgement) {
            return Ok(judgement);
        }
        tokio::select! {
            _ = cancel.cancelled() => return Err((cancelled(what), judgement)),
            _ = &mut deadline => return Err((timed_out(what, timeout), judgement)),
            change = changes.next() => if change.is_none() {
                let ended = KubeError::Watch { what: what.to_string(), detail: "watch ended".into() };
                return Err((ended, judgement));
            },
        }
    }
}

/// Runs `work` until it finishes, the deadline passes or Terraform cancels.
async fn within<T>(
    timeout: Duration,
    cancel: &CancellationToken,
    what: &str,
    work: impl Future<Output = Result<T, KubeError>>,
) -> Result<T, KubeError> {
    tokio::select! {
        _ = cancel.cancelled() => Err(cancelled(what)),
        result = tokio::time::timeout(timeout, work) => result.unwrap_or_else(|_| Err(timed_out(what, timeout))),
    }
}

fn cancelled(what: &str) -> KubeError {
    KubeError::Cancelled(what.to_string())
}

fn timed_out(what: &str, timeout: Duration) -> KubeError {
    KubeError::Timeout {
        what: what.to_string(),
        seconds: timeout.as_secs(),
    }
}
