//! When istiod counts a VM's WorkloadEntry as a healthy endpoint: the one rule both
//! `istio_vm_registration` (`healthy`, `wait_for_healthy`) and `istio_mesh_service` (`wait`) use.
//!
//! istiod's rule (`isHealthy` in `pilot/pkg/serviceregistry/serviceentry/conversion.go`):
//! the `proxy.istio.io/health-checks-enabled` annotation, parsed with Go's `strconv.ParseBool`
//! (anything unparsable is false), gates first. Without it the entry always serves. With it,
//! the `Healthy` condition decides, and an absent condition (or any status other than `True` /
//! `False`) counts as unhealthy (`GetBoolConditionFromSpec(..., false)` in
//! `pilot/pkg/model/status/helper.go`).

use super::HEALTH_CHECKS_ENABLED_ANNOTATION;
use super::crd::{WorkloadEntry, WorkloadGroup, healthy_condition};

/// Go's `strconv.ParseBool`: `1 t T TRUE true True` and `0 f F FALSE false False`.
pub fn go_parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Whether istiod gates this entry on its `Healthy` condition.
pub fn health_checks_enabled(entry: &WorkloadEntry) -> bool {
    entry
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(HEALTH_CHECKS_ENABLED_ANNOTATION))
        .and_then(|value| go_parse_bool(value))
        .unwrap_or(false)
}

/// istiod's verdict on one entry, with the reason when it does not serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryHealth {
    /// istiod sends traffic to the entry.
    pub healthy: bool,
    /// Empty when healthy; istiod's condition message, or why there is none, otherwise.
    pub message: String,
}

/// The health of one entry exactly as istiod decides it (see the module docs).
pub fn entry_health(entry: &WorkloadEntry) -> EntryHealth {
    if !health_checks_enabled(entry) {
        return EntryHealth {
            healthy: true,
            message: String::new(),
        };
    }
    match healthy_condition(entry) {
        Some(condition) if condition.status == "True" => EntryHealth {
            healthy: true,
            message: String::new(),
        },
        Some(condition) => EntryHealth {
            healthy: false,
            message: condition
                .message
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| format!("Healthy={}", condition.status)),
        },
        None => EntryHealth {
            healthy: false,
            message: "istiod has not reported health yet (no Healthy condition)".into(),
        },
    }
}

/// Whether istiod will ever write a `Healthy` condition for the VMs of `group`: only when the
/// group has a probe. The probe reaches the VM in mesh.yaml; without one the agent reports
/// nothing, and istiod marks an auto-registered entry health-checked only when the proxy has a
/// readiness probe (`workloadEntryFromGroup` in `pilot/pkg/autoregistration/controller.go`).
/// Such a VM serves as soon as its entry exists (see [`entry_health`]).
pub fn health_is_reported(group: &WorkloadGroup) -> Result<(), String> {
    if group.spec.probe.is_some() {
        return Ok(());
    }
    Err(format!(
        "WorkloadGroup {}/{} has no probe, so istiod never reports health for its VMs: without a probe a VM serves as soon as its WorkloadEntry exists, and there is no Healthy condition to wait for. Add a `probe` to the group, or remove `wait_for_healthy` (istio_mesh_service's `wait` counts such VMs as healthy, as istiod does).",
        group.metadata.namespace.as_deref().unwrap_or_default(),
        group.metadata.name.as_deref().unwrap_or_default()
    ))
}

/// Shorthand for `entry_health(entry).healthy`.
pub fn is_healthy(entry: &WorkloadEntry) -> bool {
    entry_health(entry).healthy
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(annotation: Option<&str>, conditions: serde_json::Value) -> WorkloadEntry {
        let mut annotations = serde_json::Map::new();
        if let Some(value) = annotation {
            annotations.insert(HEALTH_CHECKS_ENABLED_ANNOTATION.into(), json!(value));
        }
        serde_json::from_value(json!({
            "apiVersion": "networking.istio.io/v1", "kind": "WorkloadEntry",
            "metadata": {"name": "e", "namespace": "ns", "annotations": annotations},
            "spec": {"address": "10.0.0.1"},
            "status": {"conditions": conditions}
        }))
        .unwrap()
    }

    #[test]
    fn health_is_reported_only_for_groups_with_a_probe() {
        use crate::istio::crd::{ReadinessProbe, WorkloadGroupSpec};
        let mut group = WorkloadGroup::new("g", WorkloadGroupSpec::default());
        group.metadata.namespace = Some("ns".into());
        let error = health_is_reported(&group).unwrap_err();
        assert!(error.contains("ns/g has no probe"), "{error}");
        group.spec.probe = Some(ReadinessProbe::default());
        assert!(health_is_reported(&group).is_ok());
    }

    #[test]
    fn annotation_is_parsed_like_go_parse_bool() {
        for text in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(go_parse_bool(text), Some(true), "{text}");
        }
        for text in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(go_parse_bool(text), Some(false), "{text}");
        }
        for text in ["", "yes", "tRue", " true"] {
            assert_eq!(go_parse_bool(text), None, "{text}");
        }
    }

    #[test]
    fn without_health_checks_an_entry_always_serves() {
        let unhealthy = json!([{"type": "Healthy", "status": "False", "message": "x"}]);
        for annotation in [None, Some("false"), Some("0"), Some("yes"), Some("")] {
            assert!(
                is_healthy(&entry(annotation, unhealthy.clone())),
                "{annotation:?}"
            );
            assert!(is_healthy(&entry(annotation, json!([]))), "{annotation:?}");
        }
    }

    #[test]
    fn with_health_checks_the_condition_decides_and_absent_is_unhealthy() {
        for annotation in ["true", "True", "1", "t", "TRUE"] {
            let on = Some(annotation);
            assert!(is_healthy(&entry(
                on,
                json!([{"type": "Healthy", "status": "True"}])
            )));
            let health = entry_health(&entry(
                on,
                json!([{"type": "Healthy", "status": "False", "message": "probe failed"}]),
            ));
            assert_eq!(
                health,
                EntryHealth {
                    healthy: false,
                    message: "probe failed".into()
                }
            );
            assert!(!is_healthy(&entry(on, json!([]))));
            assert!(!is_healthy(&entry(
                on,
                json!([{"type": "Healthy", "status": "Unknown"}])
            )));
        }
    }
}
