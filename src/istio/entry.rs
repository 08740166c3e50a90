//! The WorkloadEntry of one VM: its name as istiod derives it for auto-registration (`pilot/pkg/autoregistration/controller.go` (`autoregisteredWorkloadEntryName`)) and,
//! for manual registration, the object istiod's `workloadEntryFromGroup` would build (`pilot/pkg/autoregistration/controller.go` (`workloadEntryFromGroup`)),
//! adapted so that istiod treats it as a manually created, health-checked entry (`pilot/pkg/autoregistration/controller.go` (`isHealthCheckedWorkloadEntry`)).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::bundle::{CANONICAL_NAME_LABEL, CANONICAL_REVISION_LABEL, canonical_service};
use super::crd::{IstioApiVersion, WorkloadEntry, WorkloadGroup};
use super::{HEALTH_CHECKS_ENABLED_ANNOTATION, IstioError};

/// Kubernetes' limit on object names; istiod keeps the *end* of a longer name (`pilot/pkg/autoregistration/controller.go` (`autoregisteredWorkloadEntryName`)).
const MAX_NAME_LEN: usize = 253;

/// `<group>-<ip>[-<network>]` with `:` of an IPv6 address replaced by `-`, cut from the front to
/// 253 characters — the name istiod gives an auto-registered entry (`pilot/pkg/autoregistration/controller.go` (`autoregisteredWorkloadEntryName`)). `ip` is the VM's first
/// address as the agent reports it (`ISTIO_SVC_IP` / `INSTANCE_IP`).
pub fn workload_entry_name(group: &str, ip: &str, network: Option<&str>) -> String {
    let mut parts = vec![group.to_string(), ip.replace(':', "-")];
    if let Some(network) = network.filter(|n| !n.is_empty()) {
        parts.push(network.to_string());
    }
    keep_tail(parts.join("-"), MAX_NAME_LEN)
}

/// The last `max` bytes of `name` (never splitting a character).
fn keep_tail(name: String, max: usize) -> String {
    if name.len() <= max {
        return name;
    }
    let mut start = name.len() - max;
    while !name.is_char_boundary(start) {
        start += 1;
    }
    name[start..].to_string()
}

/// What the provider knows about one manually registered VM.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ManualRegistration {
    /// Name of the entry (the same value goes into the bundle as `ISTIO_META_WORKLOAD_ENTRY`).
    pub entry_name: String,
    /// The VM's IP (or DNS name), `spec.address`.
    pub address: String,
    /// Overrides `template.network`.
    pub network: Option<String>,
    /// Overrides `template.locality` (`region/zone/subzone`).
    pub locality: Option<String>,
    /// Overrides `template.weight`.
    pub weight: Option<u32>,
    /// Highest-precedence labels (istiod's "proxy labels" position).
    pub labels: BTreeMap<String, String>,
    /// Version the group was read at; the owner reference must name a served version.
    pub group_api_version: IstioApiVersion,
}

/// Builds the entry for a manually registered VM from its group, as istiod builds an
/// auto-registered one (`pilot/pkg/autoregistration/controller.go` (`workloadEntryFromGroup`)): spec copied from `template` with the VM's address (and network,
/// locality, weight when given); labels `template.labels` ← `spec.metadata.labels` ← the
/// registration's; annotations from `spec.metadata.annotations`; a controller owner reference to
/// the group, so deleting the group garbage-collects the entry.
///
/// Unlike istiod we do not set `istio.io/autoRegistrationGroup`: with it istiod would treat the
/// entry as auto-registered and delete it when the VM disconnects (`pilot/pkg/autoregistration/controller.go` (disconnect and cleanup)). We add
/// `proxy.istio.io/health-checks-enabled: "true"` when the group has a probe, without which istiod
/// ignores the VM's health reports for a manual entry (`pilot/pkg/autoregistration/controller.go` (`isHealthCheckedWorkloadEntry`)).
pub fn manual_workload_entry(
    group: &WorkloadGroup,
    reg: &ManualRegistration,
) -> Result<WorkloadEntry, IstioError> {
    let group_name = required(
        group.metadata.name.as_deref(),
        "workload_group.metadata.name",
    )?;
    let namespace = required(
        group.metadata.namespace.as_deref(),
        "workload_group.metadata.namespace",
    )?;
    let uid = required(group.metadata.uid.as_deref(), "workload_group.metadata.uid")?;
    required(Some(&reg.entry_name), "entry_name")?;
    required(Some(&reg.address), "address")?;

    let spec_metadata = group.spec.metadata.clone().unwrap_or_default();
    let mut spec = group.spec.template.clone();
    spec.address = reg.address.clone();
    override_if_set(&mut spec.network, reg.network.as_deref());
    override_if_set(&mut spec.locality, reg.locality.as_deref());
    if reg.weight.is_some() {
        spec.weight = reg.weight;
    }
    // istiod writes the merged labels to both `spec.labels` and `metadata.labels` (`pilot/pkg/autoregistration/controller.go` (`workloadEntryFromGroup`));
    // the service registry merges the two anyway, so the copy only keeps us identical.
    let mut labels = spec.labels.clone();
    labels.extend(spec_metadata.labels.clone());
    labels.extend(reg.labels.clone());
    // The VM presents the canonical service labels the bundle computes from its proxy labels
    // (group metadata, then template, then registration: istioctl's order), and istiod copies
    // proxy labels onto an auto-registered entry; a manual entry carries them too.
    let mut proxy_labels = spec_metadata.labels;
    proxy_labels.extend(spec.labels.clone());
    proxy_labels.extend(reg.labels.clone());
    let (canonical_name, canonical_revision) = canonical_service(&proxy_labels, group_name);
    labels.insert(CANONICAL_NAME_LABEL.into(), canonical_name);
    labels.insert(CANONICAL_REVISION_LABEL.into(), canonical_revision);
    spec.labels = labels.clone();

    let mut annotations = spec_metadata.annotations;
    if group.spec.probe.is_some() {
        annotations.insert(HEALTH_CHECKS_ENABLED_ANNOTATION.into(), "true".into());
    }

    let mut entry = WorkloadEntry::new(&reg.entry_name, spec);
    entry.metadata = ObjectMeta {
        name: Some(reg.entry_name.clone()),
        namespace: Some(namespace.to_string()),
        labels: Some(labels).filter(|l| !l.is_empty()),
        annotations: Some(annotations).filter(|a| !a.is_empty()),
        owner_references: Some(vec![OwnerReference {
            api_version: reg.group_api_version.api_version(),
            kind: WorkloadGroup::KIND.into(),
            name: group_name.to_string(),
            uid: uid.to_string(),
            controller: Some(true),
            block_owner_deletion: None,
        }]),
        ..ObjectMeta::default()
    };
    Ok(entry)
}

fn required<'a>(value: Option<&'a str>, field: &'static str) -> Result<&'a str, IstioError> {
    match value {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(IstioError::invalid(field, "must be set")),
    }
}

fn override_if_set(target: &mut String, value: Option<&str>) {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        *target = v.to_string();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::istio::crd::{
        HttpHealthCheck, ReadinessProbe, WorkloadEntrySpec, WorkloadGroupObjectMeta,
        WorkloadGroupSpec,
    };
    use crate::istio::{AUTO_REGISTRATION_GROUP_ANNOTATION, WORKLOAD_CONTROLLER_ANNOTATION};

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn group(probe: bool) -> WorkloadGroup {
        let mut wg = WorkloadGroup::new(
            "product-vm",
            WorkloadGroupSpec {
                metadata: Some(WorkloadGroupObjectMeta {
                    labels: map(&[("app", "product"), ("tier", "meta")]),
                    annotations: map(&[("team", "shop")]),
                }),
                template: WorkloadEntrySpec {
                    ports: BTreeMap::from([("http".into(), 8080)]),
                    labels: map(&[("tier", "template"), ("zone", "template")]),
                    network: "net-template".into(),
                    locality: "r1/z1".into(),
                    weight: Some(5),
                    service_account: "product".into(),
                    ..Default::default()
                },
                probe: probe.then(|| ReadinessProbe {
                    http_get: Some(HttpHealthCheck {
                        port: 8080,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            },
        );
        wg.metadata.namespace = Some("shop".into());
        wg.metadata.uid = Some("uid-123".into());
        wg
    }

    #[test]
    fn entry_name_joins_group_ip_and_network() {
        assert_eq!(
            workload_entry_name("product-vm", "10.0.0.7", None),
            "product-vm-10.0.0.7"
        );
        assert_eq!(
            workload_entry_name("product-vm", "10.0.0.7", Some("")),
            "product-vm-10.0.0.7"
        );
        assert_eq!(
            workload_entry_name("product-vm", "10.0.0.7", Some("net1")),
            "product-vm-10.0.0.7-net1"
        );
    }

    #[test]
    fn entry_name_sanitizes_ipv6() {
        assert_eq!(
            workload_entry_name("g", "fd00:10:96::1", None),
            "g-fd00-10-96--1"
        );
        assert_eq!(workload_entry_name("g", "::1", Some("n")), "g---1-n");
    }

    #[test]
    fn long_entry_name_is_cut_from_the_front() {
        let group = "g".repeat(250);
        let name = workload_entry_name(&group, "10.0.0.7", Some("net1"));
        assert_eq!(name.len(), 253);
        assert!(name.ends_with("g-10.0.0.7-net1"));
        assert!(name.starts_with('g'));
        let suffix = "-10.0.0.7-net1";
        assert_eq!(name, format!("{}{suffix}", "g".repeat(253 - suffix.len())));
    }

    #[test]
    fn manual_entry_copies_template_and_overrides_address_and_registration_fields() {
        let reg = ManualRegistration {
            entry_name: "product-vm-1".into(),
            address: "10.0.0.7".into(),
            network: Some("net-vm".into()),
            weight: Some(9),
            ..Default::default()
        };
        let entry = manual_workload_entry(&group(true), &reg).unwrap();
        assert_eq!(entry.metadata.name.as_deref(), Some("product-vm-1"));
        assert_eq!(entry.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(entry.spec.address, "10.0.0.7");
        assert_eq!(entry.spec.network, "net-vm");
        assert_eq!(
            entry.spec.locality, "r1/z1",
            "template locality kept when not overridden"
        );
        assert_eq!(entry.spec.weight, Some(9));
        assert_eq!(entry.spec.service_account, "product");
        assert_eq!(
            entry.spec.ports,
            BTreeMap::from([("http".to_string(), 8080)])
        );
        assert_eq!(
            Some(&entry.spec.labels),
            entry.metadata.labels.as_ref(),
            "istiod copies labels to both"
        );
    }

    #[test]
    fn manual_entry_labels_merge_template_then_group_metadata_then_registration() {
        let reg = ManualRegistration {
            entry_name: "e".into(),
            address: "10.0.0.7".into(),
            labels: map(&[("zone", "registration"), ("registration", "r1")]),
            ..Default::default()
        };
        let entry = manual_workload_entry(&group(true), &reg).unwrap();
        assert_eq!(
            entry.metadata.labels.unwrap(),
            map(&[
                ("app", "product"),
                ("tier", "meta"),         // group metadata beats template
                ("zone", "registration"), // registration beats template
                ("registration", "r1"),
                ("service.istio.io/canonical-name", "product"),
                ("service.istio.io/canonical-revision", "latest"),
            ])
        );
    }

    /// Issue "Field defects" item 4: an auto-registered entry gets the proxy's labels, and the
    /// bundle adds the canonical service labels to them (`ISTIO_METAJSON_LABELS`,
    /// istioctl/pkg/workload/workload.go); a manual entry must carry the same.
    #[test]
    fn manual_entry_carries_the_canonical_labels_of_the_bundle() {
        let reg = ManualRegistration {
            entry_name: "e".into(),
            address: "10.0.0.7".into(),
            labels: map(&[("version", "v3")]),
            ..Default::default()
        };
        let labels = manual_workload_entry(&group(false), &reg)
            .unwrap()
            .metadata
            .labels
            .unwrap();
        assert_eq!(labels["service.istio.io/canonical-name"], "product");
        assert_eq!(labels["service.istio.io/canonical-revision"], "v3");
    }

    #[test]
    fn health_checks_annotation_only_when_the_group_has_a_probe() {
        let reg = ManualRegistration {
            entry_name: "e".into(),
            address: "10.0.0.7".into(),
            ..Default::default()
        };
        let with = manual_workload_entry(&group(true), &reg)
            .unwrap()
            .metadata
            .annotations
            .unwrap();
        assert_eq!(
            with.get(HEALTH_CHECKS_ENABLED_ANNOTATION)
                .map(String::as_str),
            Some("true")
        );
        assert_eq!(with.get("team").map(String::as_str), Some("shop"));
        let without = manual_workload_entry(&group(false), &reg)
            .unwrap()
            .metadata
            .annotations
            .unwrap();
        assert!(!without.contains_key(HEALTH_CHECKS_ENABLED_ANNOTATION));
        for annotations in [with, without] {
            assert!(!annotations.contains_key(AUTO_REGISTRATION_GROUP_ANNOTATION));
            assert!(!annotations.contains_key(WORKLOAD_CONTROLLER_ANNOTATION));
        }
    }

    #[test]
    fn owner_reference_points_at_the_group_as_controller() {
        let reg = ManualRegistration {
            entry_name: "e".into(),
            address: "10.0.0.7".into(),
            group_api_version: IstioApiVersion::V1beta1,
            ..Default::default()
        };
        let entry = manual_workload_entry(&group(false), &reg).unwrap();
        let owners = entry.metadata.owner_references.unwrap();
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].api_version, "networking.istio.io/v1beta1");
        assert_eq!(owners[0].kind, "WorkloadGroup");
        assert_eq!(owners[0].name, "product-vm");
        assert_eq!(owners[0].uid, "uid-123");
        assert_eq!(owners[0].controller, Some(true));
    }

    #[test]
    fn manual_entry_needs_the_group_uid_and_an_address() {
        let reg = ManualRegistration {
            entry_name: "e".into(),
            address: "10.0.0.7".into(),
            ..Default::default()
        };
        let mut g = group(false);
        g.metadata.uid = None;
        let err = manual_workload_entry(&g, &reg).unwrap_err().to_string();
        assert!(err.contains("uid"), "{err}");
        let no_address = ManualRegistration {
            address: String::new(),
            ..reg
        };
        assert!(manual_workload_entry(&group(false), &no_address).is_err());
    }

    #[test]
    fn manual_entry_serializes_only_what_we_own() {
        let reg = ManualRegistration {
            entry_name: "e".into(),
            address: "10.0.0.7".into(),
            ..Default::default()
        };
        let mut g = group(false);
        g.spec.template = WorkloadEntrySpec {
            service_account: "sa".into(),
            ..Default::default()
        };
        g.spec.metadata = None;
        let v = serde_json::to_value(manual_workload_entry(&g, &reg).unwrap()).unwrap();
        let canonical = serde_json::json!({
            "service.istio.io/canonical-name": "product-vm",
            "service.istio.io/canonical-revision": "latest"
        });
        assert_eq!(
            v["spec"],
            serde_json::json!({"address": "10.0.0.7", "serviceAccount": "sa", "labels": canonical})
        );
        assert_eq!(
            v["metadata"]["labels"], canonical,
            "only the canonical labels every VM presents"
        );
        assert!(v["metadata"].get("annotations").is_none());
        assert!(v.get("status").is_none());
    }
}
