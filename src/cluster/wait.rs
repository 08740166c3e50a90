//! Every wait of the provider, watch-based (never a polling loop). Each wait ends on its
//! condition, on its deadline, or when Terraform asks the provider to stop (StopProvider).
//! Watches back off after errors (`default_backoff`), so a persistent error such as a 403 does
//! not spin until the deadline; the watcher re-lists and resumes by itself.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::wait::{await_condition, conditions::is_deleted};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use super::KubeError;
use super::error::is_not_found;
use super::list::LIST_PAGE;
use crate::istio::crd::WorkloadEntry;

/// When a wait gives up: after `timeout`, or as soon as Terraform cancels (StopProvider).
#[derive(Clone, Copy, Debug)]
pub struct Deadline<'a> {
    pub timeout: Duration,
    pub cancel: &'a CancellationToken,
}

impl<'a> Deadline<'a> {
    pub fn new(timeout: Duration, cancel: &'a CancellationToken) -> Self {
        Deadline { timeout, cancel }
    }
}

/// Objects a wait can watch: a reflector store and its watch need these bounds. Each kind the
/// provider waits on says so below.
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

impl Watched for EndpointSlice {}
impl Watched for WorkloadEntry {}
#[cfg(test)]
impl Watched for k8s_openapi::api::core::v1::ConfigMap {}

/// Deletes the named object and waits until it is gone, finalizers included, within `timeout`
/// and until cancelled. An object that is already gone is not an error. `kind` names the object
/// in errors, e.g. "Service".
///
/// The API server's answer says whether there is anything to wait for: a `Status`, or the
/// object without a deletion timestamp, means it was removed at once (a WorkloadEntry or a
/// Service without finalizers); only an object marked for deletion is watched until it is gone
/// (kube-runtime's `await_condition` with `is_deleted`). kube-runtime's `delete_and_finalize`
/// always watches, which cost a LIST per deleted object.
pub async fn delete_and_wait<K>(
    api: &Api<K>,
    kind: &str,
    name: &str,
    deadline: Deadline<'_>,
) -> Result<(), KubeError>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let what = format!("{kind} {name} to be deleted");
    let deleted = async {
        // `left()`: the object rather than a Status.
        let pending_uid = match api.delete(name, &DeleteParams::default()).await {
            Ok(answer) => match answer.left() {
                Some(object) if object.meta().deletion_timestamp.is_some() => {
                    object.meta().uid.clone()
                }
                _ => return Ok(()),
            },
            Err(error) if is_not_found(&error) => return Ok(()),
            Err(error) => return Err(KubeError::from(error)),
        };
        let gone = is_deleted(pending_uid.as_deref().unwrap_or_default());
        match await_condition(api.clone(), name, gone).await {
            Ok(_) => Ok(()),
            Err(error) => Err(KubeError::Watch {
                what: what.clone(),
                detail: error.to_string(),
            }),
        }
    };
    within(deadline, &what, deleted).await
}

/// Watches the objects matching `label_selector` until `done(judge(objects))`; returns that
/// judgement, or on deadline, cancellation or a failed watch the error with the last judgement,
/// so the caller can say what it saw.
pub async fn wait_for_set<K: Watched, T>(
    api: &Api<K>,
    label_selector: &str,
    judge: impl Fn(&[Arc<K>]) -> T,
    done: impl Fn(&T) -> bool,
    deadline: Deadline<'_>,
    what: &str,
) -> Result<T, (KubeError, T)> {
    let (objects, changes) = reflect(api, label_selector, what);
    let judge_now = || judge(&objects.state());
    wait_on(changes, judge_now, done, deadline, what).await
}

/// Like [`wait_for_set`] over two sets at once (e.g. EndpointSlices and WorkloadEntries).
pub async fn wait_for_sets<A: Watched, B: Watched, T>(
    first: (&Api<A>, &str),
    second: (&Api<B>, &str),
    judge: impl Fn(&[Arc<A>], &[Arc<B>]) -> T,
    done: impl Fn(&T) -> bool,
    deadline: Deadline<'_>,
    what: &str,
) -> Result<T, (KubeError, T)> {
    let (first_objects, first_changes) = reflect(first.0, first.1, what);
    let (second_objects, second_changes) = reflect(second.0, second.1, what);
    let changes = futures::stream::select(first_changes, second_changes);
    let judge_now = || judge(&first_objects.state(), &second_objects.state());
    wait_on(changes, judge_now, done, deadline, what).await
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
    let config = watcher::Config::default()
        .labels(label_selector)
        .page_size(LIST_PAGE);
    let changes = watcher(api.clone(), config)
        .default_backoff()
        .modify(|object| object.managed_fields_mut().clear())
        .reflect(writer)
        .map(move |event| {
            if let Err(error) = event {
                tracing::debug!(%error, "watch error while waiting for {what}; retrying");
            }
        });
    (reader, changes)
}

/// One watch of the objects matching a label selector in one namespace, shared by every wait
/// and read of the provider process: N concurrent waits cost one LIST and one WATCH instead of
/// N of each. A background task keeps the store current (with backoff after errors, re-listing
/// by itself) and announces every change to the waiters; it stops when the last user drops it.
pub struct SharedWatch<K: Watched> {
    objects: Store<K>,
    changes: tokio::sync::watch::Receiver<u64>,
    /// True once the first list is in the store. (`Store::wait_until_ready` wakes only the
    /// last of several concurrent waiters: it keeps a single waker.)
    listed: tokio::sync::watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl<K: Watched> SharedWatch<K> {
    pub fn start(api: Api<K>, label_selector: &str) -> Self {
        let (objects, writer) = reflector::store();
        let (announce, changes) = tokio::sync::watch::channel(0u64);
        let (mark_listed, listed) = tokio::sync::watch::channel(false);
        let selector = label_selector.to_string();
        // Pages of LIST_PAGE, not kube-runtime's 500: a page is parsed whole, managedFields and
        // all, before `modify` drops them, so the page size bounds the memory of the first list.
        let config = watcher::Config::default()
            .labels(label_selector)
            .page_size(LIST_PAGE);
        // Nobody reads managedFields: dropping them keeps a store of 1000 entries small.
        let events = watcher(api, config)
            .default_backoff()
            .modify(|object| object.managed_fields_mut().clear())
            .reflect(writer);
        let task = tokio::spawn(async move {
            let mut events = pin!(events);
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::InitDone) => mark_listed.send_replace(true),
                    Ok(_) => false,
                    Err(error) => {
                        tracing::debug!(%error, %selector, "shared watch error; retrying");
                        false
                    }
                };
                announce.send_modify(|generation| *generation = generation.wrapping_add(1));
            }
        });
        SharedWatch {
            objects,
            changes,
            listed,
            task,
        }
    }

    /// Like [`wait_for_set`], judged over the shared store after every change it sees.
    pub async fn wait_for<T>(
        &self,
        judge: impl Fn(&[Arc<K>]) -> T,
        done: impl Fn(&T) -> bool,
        deadline: Deadline<'_>,
        what: &str,
    ) -> Result<T, (KubeError, T)> {
        let changes = futures::stream::unfold(self.changes.clone(), |mut changes| async move {
            changes.changed().await.ok()?;
            Some(((), changes))
        });
        let judge_now = || judge(&self.objects.state());
        wait_on(changes, judge_now, done, deadline, what).await
    }

    /// The objects as of now, once the first list has arrived; `None` when it has not within
    /// `timeout` (the watch keeps failing, e.g. for want of RBAC).
    pub async fn current(&self, timeout: Duration) -> Option<Vec<Arc<K>>> {
        let mut listed = self.listed.clone();
        let ready = tokio::time::timeout(timeout, listed.wait_for(|listed| *listed)).await;
        matches!(ready, Ok(Ok(_))).then(|| self.objects.state())
    }
}

impl<K: Watched> Drop for SharedWatch<K> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Judges after every change until `done`, the deadline or cancellation.
async fn wait_on<T>(
    changes: impl Stream<Item = ()>,
    judge: impl Fn() -> T,
    done: impl Fn(&T) -> bool,
    deadline: Deadline<'_>,
    what: &str,
) -> Result<T, (KubeError, T)> {
    let mut changes = pin!(changes);
    let mut expired = pin!(tokio::time::sleep(deadline.timeout));
    loop {
        let judgement = judge();
        if done(&judgement) {
            return Ok(judgement);
        }
        tokio::select! {
            _ = deadline.cancel.cancelled() => return Err((cancelled(what), judgement)),
            _ = &mut expired => return Err((timed_out(what, deadline.timeout), judgement)),
            change = changes.next() => if change.is_none() {
                let ended = KubeError::Watch { what: what.to_string(), detail: "watch ended".into() };
                return Err((ended, judgement));
            },
        }
    }
}

/// Runs `work` until it finishes, the deadline passes or Terraform cancels.
async fn within<T>(
    deadline: Deadline<'_>,
    what: &str,
    work: impl Future<Output = Result<T, KubeError>>,
) -> Result<T, KubeError> {
    tokio::select! {
        _ = deadline.cancel.cancelled() => Err(cancelled(what)),
        result = tokio::time::timeout(deadline.timeout, work) => {
            result.unwrap_or_else(|_| Err(timed_out(what, deadline.timeout)))
        }
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use k8s_openapi::api::core::v1::ConfigMap;
    use serde_json::json;

    use super::*;
    use crate::cluster::mock::{Reply, list, mock_client, status};

    const SHORT: Duration = Duration::from_millis(300);

    fn config_map(name: &str, state: &str) -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "resourceVersion": "1"},
               "data": {"state": state}})
    }

    fn ready(objects: &[Arc<ConfigMap>]) -> usize {
        let is_ready = |c: &&Arc<ConfigMap>| {
            c.data
                .as_ref()
                .and_then(|d| d.get("state"))
                .is_some_and(|s| s == "ready")
        };
        objects.iter().filter(is_ready).count()
    }

    /// What the API server answers to a DELETE that must wait for finalizers: the object,
    /// marked for deletion.
    fn marked_for_deletion(name: &str) -> serde_json::Value {
        let mut object = config_map(name, "x");
        object["metadata"]["deletionTimestamp"] = json!("2026-12-01T00:00:00Z");
        object["metadata"]["finalizers"] = json!(["example.com/cleanup"]);
        object
    }

    #[tokio::test]
    async fn an_object_removed_at_once_is_not_watched() {
        let removed = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                             "details": {"name": "a", "kind": "configmaps", "uid": "uid-a"}});
        for answer in [removed, config_map("a", "x")] {
            let (client, recorded) = mock_client(move |seen| match seen.method.as_str() {
                "DELETE" => Reply::Json(200, answer.clone()),
                _ => Reply::Hang,
            });
            let api: Api<ConfigMap> = Api::namespaced(client, "ns");
            let cancel = CancellationToken::new();
            delete_and_wait(&api, "ConfigMap", "a", Deadline::new(SHORT, &cancel))
                .await
                .expect("deleted");
            assert_eq!(
                recorded.lines(),
                ["DELETE /api/v1/namespaces/ns/configmaps/a"]
            );
        }
    }

    #[tokio::test]
    async fn delete_and_wait_returns_once_the_object_is_gone() {
        let (client, recorded) = mock_client(|seen| match seen.method.as_str() {
            "DELETE" => Reply::Json(200, marked_for_deletion("a")),
            _ if seen.query.contains("fieldSelector=metadata.name%3Da") => list(vec![]),
            _ => Reply::Hang,
        });
        let api: Api<ConfigMap> = Api::namespaced(client, "ns");
        let cancel = CancellationToken::new();
        delete_and_wait(&api, "ConfigMap", "a", Deadline::new(SHORT, &cancel))
            .await
            .expect("deleted");
        assert_eq!(
            recorded.lines(),
            [
                "DELETE /api/v1/namespaces/ns/configmaps/a",
                "GET /api/v1/namespaces/ns/configmaps"
            ]
        );
    }

    #[tokio::test]
    async fn deleting_what_is_already_gone_is_not_an_error() {
        let (client, recorded) = mock_client(|_| status(404, "NotFound"));
        let api: Api<ConfigMap> = Api::namespaced(client, "ns");
        let cancel = CancellationToken::new();
        delete_and_wait(&api, "ConfigMap", "a", Deadline::new(SHORT, &cancel))
            .await
            .expect("already gone");
        assert_eq!(recorded.lines().len(), 1);
    }

    #[tokio::test]
    async fn a_delete_that_never_finishes_ends_at_the_deadline() {
        let (client, _) = mock_client(|seen| match seen.method.as_str() {
            "DELETE" => Reply::Json(200, marked_for_deletion("a")),
            _ => Reply::Hang,
        });
        let api: Api<ConfigMap> = Api::namespaced(client, "ns");
        let cancel = CancellationToken::new();
        let error = delete_and_wait(&api, "ConfigMap", "a", Deadline::new(SHORT, &cancel))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, KubeError::Timeout { what, .. } if what == "ConfigMap a to be deleted"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn terraform_cancelling_ends_a_delete_wait() {
        let (client, _) = mock_client(|_| Reply::Hang);
        let api: Api<ConfigMap> = Api::namespaced(client, "ns");
        let cancel = CancellationToken::new();
        cancel.cancel();
        let error = delete_and_wait(
            &api,
            "ConfigMap",
            "a",
            Deadline::new(Duration::from_secs(60), &cancel),
        )
        .await
        .unwrap_err();
        assert!(matches!(error, KubeError::Cancelled(_)), "{error}");
    }

    #[tokio::test]
    async fn a_set_wait_returns_when_a_watch_event_meets_the_condition() {
        let (client, _) = mock_client(|seen| match seen.is_watch() {
            false => list(vec![config_map("a", "starting")]),
            true if seen.query.contains("resourceVersion=1") => Reply::Events(vec![
                json!({"type": "MODIFIED", "object": config_map("a", "ready")}),
            ]),
            true => Reply::Hang,
        });
        let api: Api<ConfigMap> = Api::namespaced(client, "ns");
        let cancel = CancellationToken::new();
        let found = wait_for_set(
            &api,
            "app=x",
            ready,
            |n| *n == 1,
            Deadline::new(SHORT, &cancel),
            "a ready",
        )
        .await
        .expect("ready");
        assert_eq!(found, 1);
    }

    #[tokio::test]
    async fn a_set_wait_that_times_out_returns_what_it_saw_last() {
        let (client, recorded) = mock_client(|seen| match seen.is_watch() {
            false => list(vec![config_map("a", "starting"), config_map("b", "ready")]),
            true => Reply::Hang,
        });
        let api: Api<ConfigMap> = Api::namespaced(client, "ns");
        let cancel = CancellationToken::new();
        let (error, last) = wait_for_set(
            &api,
            "app=x",
            ready,
            |n| *n == 2,
            Deadline::new(SHORT, &cancel),
            "both",
        )
        .await
        .unwrap_err();
        assert!(matches!(error, KubeError::Timeout { .. }), "{error}");
        assert_eq!(last, 1, "the last judgement saw b ready and a not");
        assert!(recorded.all()[0].query.contains("labelSelector=app%3Dx"));
    }

    #[tokio::test]
    async fn a_persistent_watch_error_backs_off_instead_of_spinning() {
        let (client, recorded) = mock_client(|_| status(403, "Forbidden"));
        let api: Api<ConfigMap> = Api::namespaced(client, "ns");
        let cancel = CancellationToken::new();
        let started = Instant::now();
        let (error, _) = wait_for_set(
            &api,
            "app=x",
            ready,
            |n| *n == 1,
            Deadline::new(SHORT, &cancel),
            "x",
        )
        .await
        .unwrap_err();
        assert!(matches!(error, KubeError::Timeout { .. }), "{error}");
        assert!(started.elapsed() >= SHORT);
        // The first retry comes after at least 800 ms (kube-runtime's default backoff);
        // without backoff the watcher re-lists hundreds of times in the same 300 ms.
        let requests = recorded.all().len();
        assert_eq!(requests, 1, "{requests} requests in {SHORT:?}");
    }

    #[tokio::test]
    async fn waits_on_a_shared_watch_share_one_list() {
        let (client, recorded) = mock_client(|seen| match seen.is_watch() {
            false => list(vec![
                config_map("a", "starting"),
                config_map("b", "starting"),
            ]),
            true if seen.query.contains("resourceVersion=1") => Reply::Events(vec![
                json!({"type": "MODIFIED", "object": config_map("a", "ready")}),
                json!({"type": "MODIFIED", "object": config_map("b", "ready")}),
            ]),
            true => Reply::Hang,
        });
        let api: Api<ConfigMap> = Api::namespaced(client, "ns");
        let shared = SharedWatch::start(api, "app=x");
        let cancel = CancellationToken::new();
        let named = |name: &'static str| {
            move |objects: &[Arc<ConfigMap>]| {
                let mine: Vec<_> = objects
                    .iter()
                    .filter(|c| c.metadata.name.as_deref() == Some(name))
                    .cloned()
                    .collect();
                ready(&mine)
            }
        };
        let long = Duration::from_secs(5);
        let (a, b) = tokio::join!(
            shared.wait_for(named("a"), |n| *n == 1, Deadline::new(long, &cancel), "a"),
            shared.wait_for(named("b"), |n| *n == 1, Deadline::new(long, &cancel), "b"),
        );
        assert_eq!((a.expect("a ready"), b.expect("b ready")), (1, 1));
        assert_eq!(
            recorded.lines(),
            ["GET /api/v1/namespaces/ns/configmaps"],
            "one LIST for both waits"
        );
        let current = shared.current(long).await.expect("listed");
        assert_eq!(ready(&current), 2);
    }

    #[tokio::test]
    async fn every_reader_waiting_for_the_first_list_gets_it() {
        let (client, _) = mock_client(|seen| match seen.is_watch() {
            false => list(vec![config_map("a", "ready")]),
            true => Reply::Hang,
        });
        let api: Api<ConfigMap> = Api::namespaced(client, "ns");
        let shared = SharedWatch::start(api, "app=x");
        // Readers that are never woken would wait for their hour: a hang, not a slow answer.
        let readers = (0..5).map(|_| shared.current(Duration::from_secs(3600)));
        let all_read = futures::future::join_all(readers);
        let lists = tokio::time::timeout(Duration::from_secs(30), all_read)
            .await
            .expect("a reader waiting for the first list was never woken");
        assert!(
            lists
                .iter()
                .all(|l| l.as_ref().is_some_and(|l| ready(l) == 1))
        );
    }

    #[tokio::test]
    async fn a_wait_on_two_sets_judges_both() {
        let (client, _) = mock_client(|seen| match (seen.is_watch(), seen.query.as_str()) {
            (false, query) if query.contains("first") => list(vec![config_map("a", "ready")]),
            (false, _) => list(vec![config_map("b", "ready"), config_map("c", "ready")]),
            (true, _) => Reply::Hang,
        });
        let api: Api<ConfigMap> = Api::namespaced(client, "ns");
        let cancel = CancellationToken::new();
        let both =
            |first: &[Arc<ConfigMap>], second: &[Arc<ConfigMap>]| ready(first) + ready(second);
        let total = wait_for_sets(
            (&api, "set=first"),
            (&api, "set=second"),
            both,
            |n| *n == 3,
            Deadline::new(SHORT, &cancel),
            "three",
        )
        .await
        .expect("three ready");
        assert_eq!(total, 3);
    }
}
