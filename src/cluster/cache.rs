//! What one provider process reads once and shares between resources: within one Terraform
//! command the served API versions, the control plane's ConfigMaps and Services, and the
//! WorkloadGroup many registrations come from do not change, so N registrations cost one read
//! of each instead of N. Entries expire after [`FACTS_TTL`], so a long apply still notices a
//! change made meanwhile; a missing ConfigMap or Service is asked for again (istiod may publish
//! it any moment), and the provider's own writes replace what they change.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DynamicObject, ListParams, ObjectList};
use kube::core::Request;
use kube::{Client, Resource};
use serde::Deserialize;
use tokio::sync::OnceCell;

use super::KubeError;
use super::discovery::served_version;
use super::list::follow_pages;
use super::mesh;
use super::wait::SharedWatch;
use crate::istio::crd::{IstioApiVersion, WorkloadEntry, WorkloadGroup};

/// How long a cached fact is trusted. A Terraform command rarely runs longer; when it does, the
/// fact is read again.
pub const FACTS_TTL: Duration = Duration::from_secs(60);

/// A map of values fetched once per key and kept for a while. Concurrent misses of one key wait
/// for a single fetch instead of each sending their own request.
pub struct TtlCache<V> {
    ttl: Duration,
    slots: Mutex<HashMap<String, Slot<V>>>,
}

type Slot<V> = Arc<tokio::sync::Mutex<Option<(Instant, V)>>>;

impl<V: Clone> TtlCache<V> {
    pub fn new(ttl: Duration) -> Self {
        TtlCache {
            ttl,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The cached value of `key`, or the result of `fetch`, kept when it is `Some`.
    pub async fn get_or_fetch<E, F, Fut>(&self, key: &str, fetch: F) -> Result<Option<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, E>>,
    {
        let slot = self.slot(key);
        let mut cached = slot.lock().await;
        if let Some((at, value)) = cached.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(Some(value.clone()));
        }
        let fetched = fetch().await?;
        *cached = fetched.clone().map(|value| (Instant::now(), value));
        Ok(fetched)
    }

    /// Replaces the value of `key` (after the provider wrote it and knows what it is now).
    pub fn put(&self, key: &str, value: V) {
        let slot = self.slot(key);
        if let Ok(mut cached) = slot.try_lock() {
            *cached = Some((Instant::now(), value));
        } else {
            // A fetch is in flight; it may return the value from before our write.
            self.forget(key);
        }
    }

    /// Drops the value of `key`: the next reader fetches it.
    pub fn forget(&self, key: &str) {
        self.slots.lock().expect("cache lock").remove(key);
    }

    fn slot(&self, key: &str) -> Slot<V> {
        let mut slots = self.slots.lock().expect("cache lock");
        slots.entry(key.to_string()).or_default().clone()
    }
}

/// The provider process's shared reads and watches (one per configured provider).
pub struct ClusterCache {
    client: Client,
    version: OnceCell<IstioApiVersion>,
    texts: TtlCache<String>,
    revisions: TtlCache<String>,
    services: TtlCache<Service>,
    /// `None` is kept too: at plan, a group created later in the run is absent for every
    /// registration; at apply, creating it replaces the `None`.
    groups: TtlCache<Option<DynamicObject>>,
    secrets: TtlCache<Arc<Vec<Secret>>>,
    entry_watches: Mutex<HashMap<String, Arc<SharedWatch<WorkloadEntry>>>>,
}

impl ClusterCache {
    pub fn new(client: Client) -> Self {
        ClusterCache {
            client,
            version: OnceCell::new(),
            texts: TtlCache::new(FACTS_TTL),
            revisions: TtlCache::new(FACTS_TTL),
            services: TtlCache::new(FACTS_TTL),
            groups: TtlCache::new(FACTS_TTL),
            secrets: TtlCache::new(FACTS_TTL),
            entry_watches: Mutex::new(HashMap::new()),
        }
    }

    /// The version the cluster serves WorkloadGroups at (discovery once per process: Istio is
    /// not upgraded in the middle of a Terraform command).
    pub async fn served_version(&self) -> Result<IstioApiVersion, KubeError> {
        self.version
            .get_or_try_init(|| served_version(&self.client))
            .await
            .copied()
    }

    /// What the connection check found out about the served version (`None`: ask later).
    pub fn knows_served_version(&self, version: Option<IstioApiVersion>) {
        if let Some(version) = version {
            // Set once per process; a second configure found the same.
            let _ = self.version.set(version);
        }
    }

    /// [`mesh::mesh_config`], shared.
    pub async fn mesh_config(
        &self,
        istio_namespace: &str,
        revision: &str,
    ) -> Result<Option<String>, KubeError> {
        let key = format!("mesh/{istio_namespace}/{revision}");
        self.texts
            .get_or_fetch(&key, || {
                mesh::mesh_config(&self.client, istio_namespace, revision)
            })
            .await
    }

    /// [`mesh::injector_values`], shared.
    pub async fn injector_values(
        &self,
        istio_namespace: &str,
        revision: &str,
    ) -> Result<Option<String>, KubeError> {
        let key = format!("injector/{istio_namespace}/{revision}");
        self.texts
            .get_or_fetch(&key, || {
                mesh::injector_values(&self.client, istio_namespace, revision)
            })
            .await
    }

    /// [`mesh::root_cert`], shared.
    pub async fn root_cert(&self, namespace: &str) -> Result<Option<String>, KubeError> {
        let key = format!("root-cert/{namespace}");
        self.texts
            .get_or_fetch(&key, || mesh::root_cert(&self.client, namespace))
            .await
    }

    /// [`mesh::resolve_revision`], shared.
    pub async fn revision(&self, istio_namespace: &str, explicit: Option<&str>) -> String {
        if let Some(revision) = explicit.filter(|r| !r.is_empty()) {
            return revision.to_string();
        }
        let resolved = self
            .revisions
            .get_or_fetch(istio_namespace, || async {
                let revision = mesh::resolve_revision(&self.client, istio_namespace, None).await;
                Ok::<_, KubeError>(Some(revision))
            })
            .await;
        resolved.ok().flatten().unwrap_or_default()
    }

    /// A Service (e.g. the east-west gateway), shared.
    pub async fn service(&self, namespace: &str, name: &str) -> Result<Option<Service>, KubeError> {
        let api: Api<Service> = Api::namespaced(self.client.clone(), namespace);
        self.services
            .get_or_fetch(&format!("{namespace}/{name}"), || async {
                Ok(api.get_opt(name).await?)
            })
            .await
    }

    /// The Secrets with `label_selector` in `namespace`, as [`list_secrets`] reads them: one
    /// LIST shared by every registration there. A Secret created after the list is not in it:
    /// callers confirm an absence with a GET.
    pub async fn secrets(
        &self,
        namespace: &str,
        label_selector: &str,
    ) -> Result<Arc<Vec<Secret>>, KubeError> {
        let listed = self
            .secrets
            .get_or_fetch(&format!("{namespace}/{label_selector}"), || async {
                let secrets = list_secrets(&self.client, namespace, label_selector).await?;
                Ok::<_, KubeError>(Some(Arc::new(secrets)))
            })
            .await?;
        Ok(listed.unwrap_or_default())
    }

    /// A WorkloadGroup at `version`, shared by the registrations made from it.
    pub async fn workload_group(
        &self,
        version: IstioApiVersion,
        namespace: &str,
        name: &str,
    ) -> Result<Option<DynamicObject>, KubeError> {
        let resource = version.api_resource(WorkloadGroup::KIND);
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &resource);
        let cached = self
            .groups
            .get_or_fetch(&group_key(version, namespace, name), || async {
                Ok::<_, KubeError>(Some(api.get_opt(name).await?))
            })
            .await?;
        Ok(cached.flatten())
    }

    /// After the provider applied a WorkloadGroup: registrations read what it wrote.
    pub fn remember_workload_group(&self, version: IstioApiVersion, object: &DynamicObject) {
        let namespace = object.meta().namespace.clone().unwrap_or_default();
        let name = object.meta().name.clone().unwrap_or_default();
        self.groups
            .put(&group_key(version, &namespace, &name), Some(object.clone()));
    }

    /// After the provider deleted a WorkloadGroup.
    pub fn forget_workload_group(&self, namespace: &str, name: &str) {
        for version in IstioApiVersion::PREFERENCE {
            self.groups.put(&group_key(version, namespace, name), None);
        }
    }

    /// The one watch of the provider's WorkloadEntries (those with `label_key`) in `namespace`,
    /// started on first use and shared by every wait and read of this process.
    pub fn workload_entries(
        &self,
        namespace: &str,
        label_key: &str,
    ) -> Arc<SharedWatch<WorkloadEntry>> {
        let key = format!("{namespace}/{label_key}");
        let mut watches = self.entry_watches.lock().expect("watch lock");
        watches
            .entry(key)
            .or_insert_with(|| {
                let api: Api<WorkloadEntry> = Api::namespaced(self.client.clone(), namespace);
                Arc::new(SharedWatch::start(api, label_key))
            })
            .clone()
    }
}

/// A listed Secret with only what the provider reads of it (name, UID, resource version,
/// labels and annotations): parsing skips its data and managedFields, a thousand Secrets' field
/// trees, instead of building them and dropping them.
#[derive(Clone, Debug, Deserialize)]
struct ListedSecret {
    metadata: ListedMeta,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListedMeta {
    name: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
}

impl From<ListedSecret> for Secret {
    fn from(listed: ListedSecret) -> Self {
        let ListedMeta {
            name,
            uid,
            resource_version,
            labels,
            annotations,
        } = listed.metadata;
        Secret {
            metadata: ObjectMeta {
                name,
                uid,
                resource_version,
                labels,
                annotations,
                ..ObjectMeta::default()
            },
            ..Secret::default()
        }
    }
}

/// Secrets per page: more than [`LIST_PAGE`](super::list::LIST_PAGE), because a
/// [`ListedSecret`] parses neither the data nor managedFields.
const SECRET_LIST_PAGE: u32 = 250;

/// The Secrets with `label_selector` in `namespace` (see [`ListedSecret`]), page by page.
async fn list_secrets(
    client: &Client,
    namespace: &str,
    label_selector: &str,
) -> Result<Vec<Secret>, KubeError> {
    let request = Request::new(Secret::url_path(&(), Some(namespace)));
    let first = ListParams::default()
        .labels(label_selector)
        .limit(SECRET_LIST_PAGE);
    let listed = follow_pages(first, |params| {
        let page = request.list(&params).map_err(kube::Error::BuildRequest);
        async move { client.request::<ObjectList<ListedSecret>>(page?).await }
    })
    .await?;
    Ok(listed.into_iter().map(Secret::from).collect())
}

fn group_key(version: IstioApiVersion, namespace: &str, name: &str) -> String {
    format!("{}/{namespace}/{name}", version.api_version())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn secrets_are_listed_page_by_page_without_their_data_and_shared() {
        use crate::cluster::mock::{Reply, mock_client};
        use serde_json::json;
        let secret = |name: &str| {
            json!({"metadata": {"name": name, "uid": format!("uid-{name}"), "resourceVersion": "7",
                                "annotations": {"a": "b"},
                                "managedFields": [{"manager": "x", "fieldsV1": {"f:type": {}}}]},
                   "data": {"k": "dg=="}})
        };
        let (client, recorded) = mock_client(move |seen| {
            let (items, next) = match seen.query.contains("continue=more") {
                false => (vec![secret("a"), secret("b")], "more"),
                true => (vec![secret("c")], ""),
            };
            Reply::Json(
                200,
                json!({"kind": "SecretList", "apiVersion": "v1",
                       "metadata": {"resourceVersion": "1", "continue": next}, "items": items}),
            )
        });
        let cache = ClusterCache::new(client);
        let first = cache.secrets("ns", "app=x").await.unwrap();
        let again = cache.secrets("ns", "app=x").await.unwrap();
        let names: Vec<_> = first
            .iter()
            .filter_map(|s| s.metadata.name.clone())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        let a = &first[0];
        assert_eq!(a.metadata.uid.as_deref(), Some("uid-a"));
        assert_eq!(a.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(
            a.metadata.annotations,
            Some(BTreeMap::from([("a".into(), "b".into())]))
        );
        assert_eq!(
            (a.metadata.managed_fields.clone(), a.data.clone()),
            (None, None)
        );
        assert!(
            Arc::ptr_eq(&first, &again),
            "the second reader shares the first list"
        );
        let queries: Vec<_> = recorded.all().into_iter().map(|s| s.query).collect();
        assert_eq!(queries.len(), 2, "{queries:?}");
        assert!(queries.iter().all(|q| q.contains("labelSelector=app%3Dx")
            && q.contains(&format!("limit={SECRET_LIST_PAGE}"))));
        assert!(queries[1].contains("continue=more"), "{queries:?}");
    }

    #[tokio::test]
    async fn concurrent_misses_of_one_key_fetch_once() {
        let cache: TtlCache<String> = TtlCache::new(Duration::from_secs(60));
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok::<_, ()>(Some("value".to_string()))
        };
        let (a, b, c) = tokio::join!(
            cache.get_or_fetch("k", fetch),
            cache.get_or_fetch("k", fetch),
            cache.get_or_fetch("k", fetch)
        );
        assert_eq!(
            [a, b, c].map(|v| v.unwrap()),
            [(); 3].map(|_| Some("value".to_string()))
        );
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_missing_value_is_asked_for_again() {
        let cache: TtlCache<String> = TtlCache::new(Duration::from_secs(60));
        let fetches = AtomicUsize::new(0);
        let missing = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(None)
        };
        assert_eq!(cache.get_or_fetch("k", missing).await, Ok(None));
        assert_eq!(cache.get_or_fetch("k", missing).await, Ok(None));
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_expired_or_forgotten_value_is_fetched_again() {
        let cache: TtlCache<u32> = TtlCache::new(Duration::from_millis(30));
        let one = || async { Ok::<_, ()>(Some(1)) };
        let two = || async { Ok::<_, ()>(Some(2)) };
        assert_eq!(cache.get_or_fetch("k", one).await, Ok(Some(1)));
        assert_eq!(cache.get_or_fetch("k", two).await, Ok(Some(1)));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(cache.get_or_fetch("k", two).await, Ok(Some(2)));
        cache.forget("k");
        assert_eq!(cache.get_or_fetch("k", one).await, Ok(Some(1)));
        cache.put("k", 3);
        assert_eq!(cache.get_or_fetch("k", one).await, Ok(Some(3)));
    }
}
