//! Pieces every resource shares: the `timeouts` block, the default namespace, `namespace/name`
//! import IDs, metadata validation, and reading labels back without picking up keys other tools added.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::error::ResourceError;
use crate::cluster::discovery::namespace_exists;
use crate::provider_data::Configured;
use crate::tfplug::{AttributePath, Diagnostics, Plan, Schema, Value, encode};
use crate::validation;

/// How long operations may take before the provider gives up (`30s`, `5m`, `1h`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct TimeoutsModel {
    /// Limit for create, including waits. Default depends on the resource.
    pub create: Option<String>,
    /// Limit for update, including waits.
    pub update: Option<String>,
    /// Limit for delete, including the wait until the objects are gone.
    pub delete: Option<String>,
}

/// How create and update apply an object with server-side apply: whether to take over fields
/// other managers own, and how long operations may take. Flattened into such resources' models.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct ApplyModel {
    /// Take ownership of fields another field manager owns instead of failing with a conflict.
    pub force_conflicts: Option<bool>,
    #[schemars(extend("x-tf" = {"block": "single"}))]
    pub timeouts: Option<TimeoutsModel>,
}

#[derive(Clone, Copy, Debug)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

impl TimeoutsModel {
    pub fn validate(&self, diags: &mut Diagnostics) {
        for (name, value) in [
            ("create", &self.create),
            ("update", &self.update),
            ("delete", &self.delete),
        ] {
            if let Some(text) = value
                && let Err(problem) = validation::duration(text)
            {
                diags.error(
                    "Invalid timeout",
                    problem,
                    AttributePath::new("timeouts").attr(name),
                );
            }
        }
    }

    pub fn get(
        timeouts: &Option<TimeoutsModel>,
        operation: Operation,
        default: Duration,
    ) -> Duration {
        let text = timeouts.as_ref().and_then(|t| match operation {
            Operation::Create => t.create.clone(),
            Operation::Update => t.update.clone(),
            Operation::Delete => t.delete.clone(),
        });
        text.and_then(|t| validation::duration(&t).ok())
            .unwrap_or(default)
    }
}

/// Namespace of objects whose configuration leaves it out.
pub const DEFAULT_NAMESPACE: &str = "default";

/// The configured namespace, or [`DEFAULT_NAMESPACE`].
pub fn namespace_or_default(namespace: &Option<String>) -> String {
    namespace
        .clone()
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string())
}

/// Create refuses a namespace that does not exist, before anything is written.
pub async fn require_namespace(
    configured: &Configured,
    namespace: &str,
) -> Result<(), ResourceError> {
    if namespace_exists(&configured.client, namespace).await? {
        return Ok(());
    }
    Err(ResourceError::missing(
        Some("namespace"),
        format!(
            "Namespace {namespace:?} does not exist. Create it first (for example with a kubernetes_namespace resource this one depends on), or set `namespace` to an existing one."
        ),
    ))
}

/// Create refuses to adopt an object it did not create: the user imports it or renames.
pub fn refuse_existing<T>(
    kind: &str,
    namespace: &str,
    name: &str,
    diags: &mut Diagnostics,
) -> Option<T> {
    diags.error(
        format!("{kind} already exists"),
        format!(
            "{namespace}/{name} already exists in the cluster. Import it (`terraform import <address> {namespace}/{name}`) or choose another name."
        ),
        AttributePath::new("name"),
    );
    None
}

/// The state to return from a create or update whose cluster objects exist: `Some(state)`,
/// with the failed step (if any) reported. Terraform saves that state (marking a new object
/// tainted), so nothing that exists in the cluster is lost.
pub fn keep_state<M: Serialize>(
    model: &M,
    schema: &Schema,
    result: Result<(), ResourceError>,
    summary: &str,
    diags: &mut Diagnostics,
) -> Option<Value> {
    let state = encode(model, schema, diags);
    if let Err(error) = result {
        error.report(summary, diags);
    }
    state
}

/// Plan-time validation of a resource: decodes the configuration (unknown values as
/// defaults), runs `check`, and drops judgements about values not known yet.
pub fn validate_config<T: serde::de::DeserializeOwned>(
    config: &Value,
    diags: &mut Diagnostics,
    check: impl FnOnce(&T, &mut Diagnostics),
) {
    let mut decoding = Diagnostics::new();
    match crate::tfplug::decode::<T>(config, crate::tfplug::UnknownAs::Null, &mut decoding) {
        Some(model) => check(&model, diags),
        // Terraform has type-checked the configuration against the schema, so a configuration
        // with unknowns that does not decode holds an unknown where the model needs a value
        // (`labels = { vm = each.key }` in a module's for_each). serde loses the attribute
        // path inside flattened models, so the error cannot be matched to the unknown below;
        // plan and apply decode the known values again.
        None if !config.is_fully_known() => {}
        None => diags.items.extend(decoding.items),
    }
    drop_judgements_on_unknown(config, diags);
}

/// Validation runs on configurations with values Terraform learns only during apply; those
/// decode as defaults, so judgements about them are dropped here and made again at apply.
pub fn drop_judgements_on_unknown(config: &Value, diags: &mut Diagnostics) {
    diags.items.retain(|diagnostic| match &diagnostic.path {
        Some(path) => !depends_on_unknown(config, path),
        None => true,
    });
}

fn depends_on_unknown(config: &Value, path: &AttributePath) -> bool {
    (0..=path.steps.len()).any(|length| {
        let prefix = AttributePath {
            steps: path.steps[..length].to_vec(),
        };
        config.at(&prefix).is_some_and(|value| !value.is_known())
    })
}

/// Plans `value` for an optional attribute with a provider default when the configuration
/// leaves it out (tfplug's default plan has marked it unknown on create).
pub fn plan_default(plan: &mut Plan, name: &str, value: Value) {
    if plan.config.get_attr(name).is_none_or(Value::is_null) {
        plan.planned.set_attr(name, value);
    }
}

/// Splits an import ID `namespace/name`.
pub fn parse_import_id(id: &str, diags: &mut Diagnostics) -> Option<(String, String)> {
    match id.split_once('/') {
        Some((namespace, name))
            if !namespace.is_empty() && !name.is_empty() && !name.contains('/') =>
        {
            Some((namespace.to_string(), name.to_string()))
        }
        _ => {
            diags.root_error(
                "Invalid import ID",
                format!("{id:?} is not of the form <namespace>/<name>, e.g. `terraform import ADDRESS default/product-vm`."),
            );
            None
        }
    }
}

/// A control-plane revision: empty (the default revision) or a DNS-1123 label.
pub fn validate_revision(revision: &Option<String>, diags: &mut Diagnostics) {
    if let Some(revision) = revision.as_deref().filter(|r| !r.is_empty())
        && let Err(problem) = validation::dns1123_label(revision)
    {
        diags.error("Invalid revision", problem, AttributePath::new("revision"));
    }
}

pub fn validate_name(name: &str, path: AttributePath, diags: &mut Diagnostics) {
    if let Err(problem) = validation::dns1123_subdomain(name) {
        diags.error("Invalid name", problem, path);
    }
}

pub fn validate_namespace(namespace: &str, path: AttributePath, diags: &mut Diagnostics) {
    if let Err(problem) = validation::dns1123_label(namespace) {
        diags.error("Invalid namespace", problem, path);
    }
}

/// Label keys and values; each bad entry is reported on its own map key.
pub fn validate_labels(
    labels: &Option<BTreeMap<String, String>>,
    path: AttributePath,
    diags: &mut Diagnostics,
) {
    for (key, value) in labels.iter().flatten() {
        if let Err(problem) = validation::qualified_name(key) {
            diags.error("Invalid label key", problem, path.clone().key(key));
        }
        if let Err(problem) = validation::label_value(value) {
            diags.error("Invalid label value", problem, path.clone().key(key));
        }
    }
}

pub fn validate_annotations(
    annotations: &Option<BTreeMap<String, String>>,
    path: AttributePath,
    diags: &mut Diagnostics,
) {
    for key in annotations.iter().flatten().map(|(k, _)| k) {
        if let Err(problem) = validation::qualified_name(key) {
            diags.error("Invalid annotation key", problem, path.clone().key(key));
        }
    }
}

/// Labels or annotations as Terraform should see them after a refresh: only the keys the
/// configuration manages (other tools and controllers add their own; those are not drift),
/// and an empty map stays empty rather than turning into null.
pub fn managed_entries(
    live: Option<&BTreeMap<String, String>>,
    prior: &Option<BTreeMap<String, String>>,
) -> Option<BTreeMap<String, String>> {
    let prior = prior.as_ref()?;
    let live = live.cloned().unwrap_or_default();
    Some(
        live.into_iter()
            .filter(|(key, _)| prior.contains_key(key))
            .collect(),
    )
}

/// `Some(map)` only when non-empty, for objects built from live state without a prior.
pub fn non_empty(map: Option<&BTreeMap<String, String>>) -> Option<BTreeMap<String, String>> {
    map.filter(|m| !m.is_empty()).cloned()
}

/// Annotations of a live object for import: those Kubernetes tools write for themselves
/// (`kubectl.kubernetes.io/...`) are not part of the user's configuration.
pub fn imported_annotations(
    live: Option<&BTreeMap<String, String>>,
) -> Option<BTreeMap<String, String>> {
    let annotations: BTreeMap<String, String> = live?
        .iter()
        .filter(|(key, _)| !key.starts_with("kubectl.kubernetes.io/"))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    Some(annotations).filter(|a| !a.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_id_needs_namespace_and_name() {
        let mut diags = Diagnostics::new();
        assert_eq!(
            parse_import_id("default/product-vm", &mut diags),
            Some(("default".into(), "product-vm".into()))
        );
        assert!(parse_import_id("product-vm", &mut diags).is_none());
        assert!(parse_import_id("a/b/c", &mut diags).is_none());
        assert_eq!(diags.errors().count(), 2);
    }

    #[test]
    fn refreshed_labels_keep_only_managed_keys() {
        let prior = Some(BTreeMap::from([("app".to_string(), "product".to_string())]));
        let live = BTreeMap::from([
            ("app".to_string(), "changed".to_string()),
            ("added-by-controller".to_string(), "x".to_string()),
        ]);
        let refreshed = managed_entries(Some(&live), &prior).unwrap();
        assert_eq!(
            refreshed,
            BTreeMap::from([("app".to_string(), "changed".to_string())])
        );
        assert_eq!(
            managed_entries(None, &Some(BTreeMap::new())),
            Some(BTreeMap::new())
        );
        assert_eq!(managed_entries(Some(&live), &None), None);
    }

    #[test]
    fn bad_label_is_reported_on_its_key() {
        let mut diags = Diagnostics::new();
        let labels = Some(BTreeMap::from([("Bad Key".to_string(), "v".to_string())]));
        validate_labels(&labels, AttributePath::new("labels"), &mut diags);
        assert_eq!(
            diags.errors().next().unwrap().path,
            Some(AttributePath::new("labels").key("Bad Key"))
        );
    }

    #[test]
    fn judgements_on_unknown_values_are_dropped() {
        let config = Value::object([
            ("name", Value::Unknown),
            ("labels", Value::Map(Default::default())),
            ("ports", Value::Unknown),
        ]);
        let mut diags = Diagnostics::new();
        diags.error("Invalid name", "empty", AttributePath::new("name"));
        diags.error("Invalid port", "0", AttributePath::new("ports").key("http"));
        diags.error(
            "Invalid label key",
            "bad",
            AttributePath::new("labels").key("Bad Key"),
        );
        diags.root_error("Root", "kept");
        drop_judgements_on_unknown(&config, &mut diags);
        let kept: Vec<_> = diags.items.iter().map(|d| d.summary.as_str()).collect();
        assert_eq!(kept, vec!["Invalid label key", "Root"]);
    }

    #[test]
    fn timeouts_fall_back_to_the_default() {
        let timeouts = Some(TimeoutsModel {
            delete: Some("2m".into()),
            ..Default::default()
        });
        assert_eq!(
            TimeoutsModel::get(&timeouts, Operation::Delete, Duration::from_secs(1)).as_secs(),
            120
        );
        assert_eq!(
            TimeoutsModel::get(&timeouts, Operation::Create, Duration::from_secs(7)).as_secs(),
            7
        );
    }
}
