//! Plan-time validation of the registration model; every rule names its attribute.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::{MINIMUM_TOKEN_SECONDS, REGISTRATION_LABEL, VmRegistrationModel, token_lifetime};
use crate::istio::bundle::{CANONICAL_NAME_LABEL, CANONICAL_REVISION_LABEL};
use crate::istio::control_plane::{ingress_service_location, is_plaintext_discovery};
use crate::istio::crd::WorkloadGroup;
use crate::istio::rules;
use crate::istio::{DEFAULT_ISTIO_NAMESPACE, ISTIOD_TLS_PORT};
use crate::resources::common::{validate_config, validate_labels, validate_revision};
use crate::tfplug::{AttributePath, Diagnostics, Value};
use crate::validation;

/// Plan-time validation of a configuration; judgements on values not known yet are dropped.
pub(super) fn config(config: &Value, diags: &mut Diagnostics) {
    validate_config::<VmRegistrationModel>(config, diags, |model, diags| {
        check(model, config, diags)
    });
}

pub(super) fn check(model: &VmRegistrationModel, config: &Value, diags: &mut Diagnostics) {
    let known = |name: &str| {
        config
            .get_attr(name)
            .is_some_and(|v| !v.is_null() && v.is_known())
    };
    if known("workload_group") {
        validate_group_reference(&model.workload_group, diags);
    }
    let mode = model.mode.as_deref().unwrap_or("auto");
    if known("mode") && mode != "auto" && mode != "manual" {
        diags.error(
            "Invalid mode",
            format!("mode {mode:?} is not supported: use \"auto\" or \"manual\""),
            AttributePath::new("mode"),
        );
    }
    // On `mode`: Terraform shows the source line of a diagnostic's attribute only when the
    // attribute is in the configuration, and `address` is not.
    if mode == "manual" && config.get_attr("address").is_some_and(Value::is_null) {
        diags.error(
            "Missing address",
            "mode = \"manual\" needs `address`, the VM's IP: the WorkloadEntry is created with it.",
            AttributePath::new("mode"),
        );
    }
    for (name, value) in [
        ("address", &model.address),
        ("internal_ip", &model.settings.internal_ip),
        ("external_ip", &model.settings.external_ip),
        ("ingress_ip", &model.settings.ingress_ip),
    ] {
        if let Some(text) = value.as_deref().filter(|_| known(name))
            && text.parse::<IpAddr>().is_err()
        {
            diags.error(
                "Invalid IP address",
                format!("{text:?} is not an IPv4 or IPv6 address"),
                AttributePath::new(name),
            );
        }
    }
    if known("internal_ip") && known("external_ip") {
        diags.error(
            "Conflicting attributes",
            "Set `internal_ip` or `external_ip`, not both.",
            AttributePath::new("external_ip"),
        );
    }
    if known("ingress_ip") && known("istiod_address") {
        diags.error(
            "Conflicting attributes",
            "Set `ingress_ip` or `istiod_address`, not both.",
            AttributePath::new("istiod_address"),
        );
    }
    if let Some(address) = model
        .settings
        .istiod_address
        .as_deref()
        .filter(|_| known("istiod_address"))
    {
        match parse_host_port(address) {
            None => diags.error(
                "Invalid istiod_address",
                format!("{address:?} must be host or host:port, e.g. istiod.example.com:{ISTIOD_TLS_PORT}"),
                AttributePath::new("istiod_address"),
            ),
            Some((host, port)) if is_plaintext_discovery(&format!("{host}:{port}")) => diags.error(
                "Invalid istiod_address",
                format!("{address:?} is istiod's plaintext port: the VM would connect without its token and certificate, so istiod can neither issue it a certificate nor register it. Use the TLS port {ISTIOD_TLS_PORT}."),
                AttributePath::new("istiod_address"),
            ),
            Some(_) => {}
        }
    }
    if let Some(service) = model
        .settings
        .ingress_service
        .as_deref()
        .filter(|_| known("ingress_service"))
    {
        let (name, namespace) = ingress_service_location(service, DEFAULT_ISTIO_NAMESPACE);
        if let Err(problem) =
            validation::dns1123_label(&name).and_then(|()| validation::dns1123_label(&namespace))
        {
            diags.error(
                "Invalid ingress_service",
                format!("{problem}; write <service> or <service>.<namespace>"),
                AttributePath::new("ingress_service"),
            );
        }
    }
    validate_labels(&model.settings.labels, AttributePath::new("labels"), diags);
    validate_entry_label_count(model, diags);
    if let Some(Err(problem)) = model.weight.map(rules::weight) {
        diags.error("Invalid weight", problem, AttributePath::new("weight"));
    }
    if let Some(Err(problem)) = model
        .settings
        .network
        .as_deref()
        .filter(|n| !n.is_empty())
        .map(rules::network)
    {
        diags.error("Invalid network", problem, AttributePath::new("network"));
    }
    if let Some(Err(problem)) = model
        .settings
        .locality
        .as_deref()
        .filter(|l| !l.is_empty())
        .map(rules::locality)
    {
        diags.error("Invalid locality", problem, AttributePath::new("locality"));
    }
    validate_revision(&model.settings.revision, diags);
    validate_token_durations(model, diags);
    if let Some(timeouts) = &model.timeouts {
        timeouts.validate(diags);
    }
    if model.issue_token == Some(false) && known("output_dir") {
        diags.error(
            "Conflicting attributes",
            "With issue_token = false the registration has no token to write: deliver the files of the ephemeral istio_vm_bootstrap instead of `output_dir`.",
            AttributePath::new("output_dir"),
        );
    }
    if let Some(dir) = model.output_dir.as_deref().filter(|d| d.is_empty()) {
        diags.error(
            "Invalid output_dir",
            format!("{dir:?}: give a directory path, or leave it unset"),
            AttributePath::new("output_dir"),
        );
    }
}

/// The VM's WorkloadEntry carries `labels`, the registration label and the two canonical
/// service labels (the group's labels come on top, unknown here); Istio's CRD allows 256 labels
/// on an entry, so the plan refuses what can never fit.
fn validate_entry_label_count(model: &VmRegistrationModel, diags: &mut Diagnostics) {
    let mut keys: BTreeSet<&str> = model
        .settings
        .labels
        .iter()
        .flatten()
        .map(|(k, _)| k.as_str())
        .collect();
    keys.extend([
        REGISTRATION_LABEL,
        CANONICAL_NAME_LABEL,
        CANONICAL_REVISION_LABEL,
    ]);
    let what = "labels on the VM's WorkloadEntry (`labels`, the registration label and the two canonical service labels)";
    if let Err(problem) = rules::at_most(keys.len(), rules::MAX_LABELS, what) {
        diags.error("Too many labels", problem, AttributePath::new("labels"));
    }
}

/// What the VM's WorkloadEntry inherits from its group and the API server validates there as
/// Kubernetes metadata: `template.labels` and `metadata.labels` become the entry's labels,
/// `metadata.annotations` its annotations (`workloadEntryFromGroup` in
/// `pilot/pkg/autoregistration/controller.go`, which the manual entry follows). A group created
/// outside Terraform can hold values its own CRD accepts but no entry can carry: neither istiod
/// nor the provider could then create the VM's entry. `None` when every value fits.
pub(super) fn inherited_metadata_problem(group: &WorkloadGroup) -> Option<String> {
    let metadata = group.spec.metadata.clone().unwrap_or_default();
    let labels = [
        ("spec.template.labels", &group.spec.template.labels),
        ("spec.metadata.labels", &metadata.labels),
    ];
    let mut problems = Vec::new();
    for (field, labels) in labels {
        for (key, value) in labels {
            if let Err(problem) = validation::qualified_name(key) {
                problems.push(format!("{field} key {key:?}: {problem}"));
            }
            if let Err(problem) = validation::label_value(value) {
                problems.push(format!("{field}[{key:?}] value {value:?}: {problem}"));
            }
        }
    }
    for key in metadata.annotations.keys() {
        if let Err(problem) = validation::qualified_name(key) {
            problems.push(format!("spec.metadata.annotations key {key:?}: {problem}"));
        }
    }
    if problems.is_empty() {
        return None;
    }
    let name = group.metadata.name.as_deref().unwrap_or_default();
    let namespace = group.metadata.namespace.as_deref().unwrap_or_default();
    Some(format!(
        "WorkloadGroup {namespace}/{name} gives every WorkloadEntry of the group labels or annotations that Kubernetes rejects, so no entry can be created for this VM (by the provider in manual mode, by istiod in auto mode): {}. Fix them in the group (istio_workload_group rejects them at plan).",
        problems.join("; ")
    ))
}

fn validate_group_reference(reference: &str, diags: &mut Diagnostics) {
    match reference.split_once('/') {
        Some((namespace, name)) if validation::dns1123_label(namespace).is_ok() && validation::dns1123_subdomain(name).is_ok() => {}
        _ => diags.error(
            "Invalid workload_group",
            format!("{reference:?} must be <namespace>/<name> of a WorkloadGroup, e.g. istio_workload_group.product.id or \"default/product-vm\""),
            AttributePath::new("workload_group"),
        ),
    }
}

fn validate_token_durations(model: &VmRegistrationModel, diags: &mut Diagnostics) {
    let duration = model.token_duration.as_deref().map(validation::duration);
    match &duration {
        Some(Err(problem)) => diags.error(
            "Invalid token_duration",
            problem.clone(),
            AttributePath::new("token_duration"),
        ),
        Some(Ok(d)) if d.as_secs() < MINIMUM_TOKEN_SECONDS => diags.error(
            "Invalid token_duration",
            format!(
                "{} is shorter than Kubernetes' minimum token lifetime of 10m",
                model.token_duration.as_deref().unwrap_or_default()
            ),
            AttributePath::new("token_duration"),
        ),
        _ => {}
    }
    let token = token_lifetime(model);
    match model.renew_before.as_deref().map(validation::duration) {
        Some(Err(problem)) => diags.error(
            "Invalid renew_before",
            problem,
            AttributePath::new("renew_before"),
        ),
        Some(Ok(renew)) if renew >= token => diags.error(
            "Invalid renew_before",
            "renew_before must be shorter than token_duration, or every plan would renew the token",
            AttributePath::new("renew_before"),
        ),
        _ => {}
    }
}

pub(super) fn parse_host_port(address: &str) -> Option<(String, u16)> {
    let (host, port) = match address.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') || host.starts_with('[') => {
            (host.trim_matches(['[', ']']), port.parse().ok()?)
        }
        _ => (address, ISTIOD_TLS_PORT),
    };
    (!host.is_empty() && port > 0).then(|| (host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::vm_registration::tests::config;
    use crate::tfplug::{UnknownAs, decode};

    fn errors(json: serde_json::Value) -> Vec<Option<AttributePath>> {
        let value = config(json);
        let model = decode::<VmRegistrationModel>(&value, UnknownAs::Null, &mut Diagnostics::new())
            .unwrap();
        let mut diags = Diagnostics::new();
        check(&model, &value, &mut diags);
        diags.errors().map(|d| d.path.clone()).collect()
    }

    /// examples/fleet: `labels = { vm = each.key }` in a module's for_each is unknown while
    /// Terraform validates; the labels sit in a flattened model, where serde loses the path.
    #[test]
    fn unknown_label_values_are_not_an_error_at_validation() {
        let mut value = config(serde_json::json!({
            "workload_group": "ns/group", "mode": "manual", "address": "10.0.0.1"
        }));
        let labels = [("vm".to_string(), Value::Unknown)].into_iter().collect();
        value.set_attr("labels", Value::Map(labels));
        let mut diags = Diagnostics::new();
        super::config(&value, &mut diags);
        assert_eq!(diags.errors().count(), 0, "{:?}", diags.items);
        let known_error =
            config(serde_json::json!({"workload_group": "ns/group", "mode": "bogus"}));
        let mut diags = Diagnostics::new();
        super::config(&known_error, &mut diags);
        assert_eq!(
            diags.errors().count(),
            1,
            "a known bad value is still refused"
        );
    }

    /// Issue 9 (validation oracle, `reg-bad-template-label`): what a group created outside
    /// Terraform hands every entry must be valid entry metadata.
    #[test]
    fn group_metadata_no_entry_can_carry_is_named() {
        use crate::istio::crd::{WorkloadEntrySpec, WorkloadGroupObjectMeta, WorkloadGroupSpec};
        use std::collections::BTreeMap;
        let group = |template: &[(&str, &str)], meta: &[(&str, &str)], annotations: &[&str]| {
            let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            };
            let mut g = WorkloadGroup::new(
                "g",
                WorkloadGroupSpec {
                    metadata: Some(WorkloadGroupObjectMeta {
                        labels: map(meta),
                        annotations: annotations
                            .iter()
                            .map(|k| (k.to_string(), "v".to_string()))
                            .collect(),
                    }),
                    template: WorkloadEntrySpec {
                        labels: map(template),
                        ..Default::default()
                    },
                    probe: None,
                },
            );
            g.metadata.namespace = Some("shop".into());
            g
        };
        assert_eq!(
            inherited_metadata_problem(&group(
                &[("app", "a")],
                &[("example.com/x", "y")],
                &["team"]
            )),
            None
        );
        let problem = inherited_metadata_problem(&group(&[("bad key", "x")], &[], &[])).unwrap();
        assert!(problem.contains("WorkloadGroup shop/g"), "{problem}");
        assert!(
            problem.contains("spec.template.labels key \"bad key\""),
            "{problem}"
        );
        let problem =
            inherited_metadata_problem(&group(&[], &[("app", &"v".repeat(64))], &[])).unwrap();
        assert!(
            problem.contains("spec.metadata.labels[\"app\"] value"),
            "{problem}"
        );
        let problem = inherited_metadata_problem(&group(&[], &[], &["a b"])).unwrap();
        assert!(
            problem.contains("spec.metadata.annotations key \"a b\""),
            "{problem}"
        );
    }

    #[test]
    fn valid_configurations_pass() {
        assert!(errors(serde_json::json!({"workload_group": "default/product-vm"})).is_empty());
        assert!(errors(serde_json::json!({"workload_group": "default/product-vm", "mode": "manual", "address": "10.0.0.5"})).is_empty());
    }

    #[test]
    fn every_rule_names_its_attribute() {
        let cases = [
            (
                serde_json::json!({"workload_group": "product-vm"}),
                "workload_group",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "mode": "semi"}),
                "mode",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "mode": "manual"}),
                "mode",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "address": "10.0.0"}),
                "address",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "internal_ip": "10.0.0.1", "external_ip": "1.2.3.4"}),
                "external_ip",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "ingress_ip": "10.0.0.1", "istiod_address": "x:1"}),
                "istiod_address",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "issue_token": false, "output_dir": "/tmp/b"}),
                "output_dir",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "token_duration": "5m"}),
                "token_duration",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "token_duration": "1h", "renew_before": "2h"}),
                "renew_before",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "weight": -1}),
                "weight",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "network": "Net_1"}),
                "network",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "istiod_address": "istiod.example.com:15010"}),
                "istiod_address",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "locality": "a/b/c/d"}),
                "locality",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "ingress_service": "a.b.c"}),
                "ingress_service",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "labels": {"bad key": "v"}}),
                "labels",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "istiod_address": "host:notaport"}),
                "istiod_address",
            ),
        ];
        for (json, attribute) in cases {
            let found = errors(json.clone());
            assert!(
                found.iter().any(|p| p.as_ref().is_some_and(
                    |p| p.steps.first() == AttributePath::new(attribute).steps.first()
                )),
                "{json} should fail on {attribute}, got {found:?}"
            );
        }
    }

    /// Issue "Field defects" item 5: values Istio (CRD, webhook, istioctl) accepts.
    #[test]
    fn labels_leave_room_for_the_three_the_entry_always_gets() {
        let labels = |n: usize| -> serde_json::Map<String, serde_json::Value> {
            (0..n).map(|i| (format!("l{i}"), "v".into())).collect()
        };
        let config = |n| serde_json::json!({"workload_group": "default/g", "labels": labels(n)});
        assert!(errors(config(253)).is_empty());
        assert_eq!(
            errors(config(254)),
            vec![Some(AttributePath::new("labels"))]
        );
    }

    #[test]
    fn values_istio_accepts_pass() {
        for json in [
            serde_json::json!({"workload_group": "default/g", "mode": "manual", "address": "10.0.0.5", "weight": 0}),
            serde_json::json!({"workload_group": "default/g", "ingress_service": "eastwest.istio-gateways"}),
            serde_json::json!({"workload_group": "default/g", "network": "network-1", "locality": "us-east1/us-east1-b"}),
        ] {
            assert_eq!(errors(json.clone()), vec![], "{json}");
        }
    }

    #[test]
    fn ingress_service_may_name_its_namespace_like_istioctl() {
        assert_eq!(
            ingress_service_location("istio-eastwestgateway", "istio-system"),
            (
                "istio-eastwestgateway".to_string(),
                "istio-system".to_string()
            )
        );
        assert_eq!(
            ingress_service_location("eastwest.gateways", "istio-system"),
            ("eastwest".to_string(), "gateways".to_string())
        );
    }

    #[test]
    fn host_port_parsing() {
        assert_eq!(
            parse_host_port("istiod.example.com"),
            Some(("istiod.example.com".into(), 15012))
        );
        assert_eq!(
            parse_host_port("gw.example.com:443"),
            Some(("gw.example.com".into(), 443))
        );
        assert_eq!(parse_host_port("gw:x"), None);
    }
}
