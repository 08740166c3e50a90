//! What serves behind the Service, counted per kind: ready Pod addresses from EndpointSlices,
//! healthy VMs from WorkloadEntries.

use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::EndpointSummary;
use crate::istio::crd::WorkloadEntry;
use crate::istio::entry_health;

pub(super) fn count<'a>(
    slices: impl Iterator<Item = &'a EndpointSlice>,
    entries: impl Iterator<Item = &'a WorkloadEntry>,
) -> EndpointSummary {
    let mut summary = EndpointSummary::default();
    for slice in slices {
        for endpoint in slice.endpoints.iter().flatten() {
            let addresses = endpoint.addresses.len() as i64;
            // A WorkloadEntry mirrored into an EndpointSlice would be counted twice; Pods have a targetRef of kind Pod.
            if endpoint
                .target_ref
                .as_ref()
                .and_then(|r| r.kind.as_deref())
                .is_some_and(|kind| kind != "Pod")
            {
                continue;
            }
            if endpoint
                .conditions
                .as_ref()
                .and_then(|c| c.ready)
                .unwrap_or(true)
            {
                summary.pods_ready += addresses;
            } else {
                summary.pods_not_ready += addresses;
            }
        }
    }
    for entry in entries {
        let health = entry_health(entry);
        if health.healthy {
            summary.vms_healthy += 1;
        } else {
            summary.vms_unhealthy += 1;
            let name = entry.metadata.name.clone().unwrap_or_default();
            summary
                .unhealthy_vms
                .push(format!("{name}: {}", health.message));
        }
    }
    summary.healthy = summary.pods_ready + summary.vms_healthy;
    summary
}

pub(super) fn describe(summary: &EndpointSummary, wanted: i64) -> String {
    let mut text = format!(
        "Wanted {wanted} healthy endpoint(s), found {}: Pods {} ready / {} not ready (EndpointSlices), VMs {} healthy / {} unhealthy (WorkloadEntries).",
        summary.healthy,
        summary.pods_ready,
        summary.pods_not_ready,
        summary.vms_healthy,
        summary.vms_unhealthy
    );
    for line in &summary.unhealthy_vms {
        text.push_str(&format!("\n  - {line}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::istio::HEALTH_CHECKS_ENABLED_ANNOTATION;
    use crate::istio::crd::{IstioCondition, IstioStatus, WorkloadEntrySpec};
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions};
    use std::collections::BTreeMap;

    fn entry(name: &str, checked: bool, status: Option<&str>) -> WorkloadEntry {
        let mut e = WorkloadEntry::new(name, WorkloadEntrySpec::default());
        if checked {
            e.metadata.annotations = Some(BTreeMap::from([(
                HEALTH_CHECKS_ENABLED_ANNOTATION.to_string(),
                "true".to_string(),
            )]));
        }
        e.status = status.map(|s| IstioStatus {
            conditions: vec![IstioCondition {
                type_: "Healthy".into(),
                status: s.into(),
                message: Some("probe failed".into()),
                ..Default::default()
            }],
            ..Default::default()
        });
        e
    }

    #[test]
    fn counting_per_kind() {
        let slice = EndpointSlice {
            endpoints: Some(vec![
                Endpoint {
                    addresses: vec!["10.1.0.1".into()],
                    conditions: Some(EndpointConditions {
                        ready: Some(true),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                Endpoint {
                    addresses: vec!["10.1.0.2".into()],
                    conditions: Some(EndpointConditions {
                        ready: Some(false),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        let entries = [
            entry("vm-a", true, Some("True")),
            entry("vm-b", true, Some("False")),
            entry("vm-c", true, None),
            entry("vm-d", false, None),
        ];
        let summary = count([&slice].into_iter(), entries.iter());
        assert_eq!((summary.pods_ready, summary.pods_not_ready), (1, 1));
        assert_eq!((summary.vms_healthy, summary.vms_unhealthy), (2, 2));
        assert_eq!(summary.healthy, 3);
        assert!(
            summary
                .unhealthy_vms
                .iter()
                .any(|l| l == "vm-b: probe failed")
        );
        assert!(describe(&summary, 5).contains("Pods 1 ready / 1 not ready"));
    }
}
