//! The model and the WorkloadGroup object, both ways, and the refreshed model after a read.

use std::collections::BTreeMap;

use super::{
    ExecModel, GroupMetadataModel, GrpcModel, HttpGetModel, HttpHeaderModel, ProbeModel,
    TcpSocketModel, TemplateModel, WorkloadGroupModel,
};
use crate::istio::crd::{
    ExecHealthCheck, GrpcHealthCheck, HttpHeader, HttpHealthCheck, IstioApiVersion, ReadinessProbe,
    TcpHealthCheck, WorkloadEntrySpec, WorkloadGroup, WorkloadGroupObjectMeta, WorkloadGroupSpec,
};
use crate::resources::common::{imported_annotations, managed_entries, non_empty};

pub(super) fn spec_from_model(model: &WorkloadGroupModel) -> WorkloadGroupSpec {
    WorkloadGroupSpec {
        metadata: model.metadata.as_ref().map(|m| WorkloadGroupObjectMeta {
            labels: m.labels.clone().unwrap_or_default(),
            annotations: m.annotations.clone().unwrap_or_default(),
        }),
        template: model
            .template
            .as_ref()
            .map(template_spec)
            .unwrap_or_default(),
        probe: model.probe.as_ref().map(probe_spec),
    }
}

fn template_spec(template: &TemplateModel) -> WorkloadEntrySpec {
    WorkloadEntrySpec {
        address: template.address.clone().unwrap_or_default(),
        ports: template
            .ports
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), *v as u32))
            .collect(),
        labels: template.labels.clone().unwrap_or_default(),
        network: template.network.clone().unwrap_or_default(),
        locality: template.locality.clone().unwrap_or_default(),
        weight: template.weight.map(|w| w as u32),
        service_account: template.service_account.clone().unwrap_or_default(),
    }
}

fn probe_spec(probe: &ProbeModel) -> ReadinessProbe {
    let int = |v: Option<i64>| v.map(|v| v as i32);
    ReadinessProbe {
        initial_delay_seconds: int(probe.initial_delay_seconds),
        timeout_seconds: int(probe.timeout_seconds),
        period_seconds: int(probe.period_seconds),
        success_threshold: int(probe.success_threshold),
        failure_threshold: int(probe.failure_threshold),
        http_get: probe.http_get.as_ref().map(|h| HttpHealthCheck {
            path: h.path.clone().unwrap_or_default(),
            port: h.port as u32,
            host: h.host.clone().unwrap_or_default(),
            scheme: h.scheme.clone().unwrap_or_default(),
            http_headers: h
                .http_header
                .iter()
                .map(|header| HttpHeader {
                    name: header.name.clone(),
                    value: header.value.clone(),
                })
                .collect(),
        }),
        tcp_socket: probe.tcp_socket.as_ref().map(|t| TcpHealthCheck {
            host: t.host.clone().unwrap_or_default(),
            port: t.port as u32,
        }),
        exec: probe.exec.as_ref().map(|e| ExecHealthCheck {
            command: e.command.clone(),
        }),
        grpc: probe.grpc.as_ref().map(|g| GrpcHealthCheck {
            port: g.port.map(|p| p as u32),
            service: g.service.clone().unwrap_or_default(),
        }),
    }
}

fn empty_to_none(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

fn map_to_option<V: Clone>(map: &BTreeMap<String, V>) -> Option<BTreeMap<String, V>> {
    (!map.is_empty()).then(|| map.clone())
}

/// The Terraform view of a live spec, without reference to any prior state.
pub(super) fn spec_to_model(
    spec: &WorkloadGroupSpec,
) -> (
    Option<GroupMetadataModel>,
    Option<TemplateModel>,
    Option<ProbeModel>,
) {
    let metadata = spec.metadata.as_ref().map(|m| GroupMetadataModel {
        labels: map_to_option(&m.labels),
        annotations: map_to_option(&m.annotations),
    });
    let t = &spec.template;
    let template = TemplateModel {
        address: empty_to_none(&t.address),
        ports: map_to_option(
            &t.ports
                .iter()
                .map(|(k, v)| (k.clone(), i64::from(*v)))
                .collect(),
        ),
        labels: map_to_option(&t.labels),
        network: empty_to_none(&t.network),
        locality: empty_to_none(&t.locality),
        weight: t.weight.map(i64::from),
        service_account: empty_to_none(&t.service_account),
    };
    let template = (template != TemplateModel::default()).then_some(template);
    let probe = spec.probe.as_ref().map(|p| ProbeModel {
        initial_delay_seconds: p.initial_delay_seconds.map(i64::from),
        timeout_seconds: p.timeout_seconds.map(i64::from),
        period_seconds: p.period_seconds.map(i64::from),
        success_threshold: p.success_threshold.map(i64::from),
        failure_threshold: p.failure_threshold.map(i64::from),
        http_get: p.http_get.as_ref().map(|h| HttpGetModel {
            path: empty_to_none(&h.path),
            port: i64::from(h.port),
            host: empty_to_none(&h.host),
            scheme: empty_to_none(&h.scheme),
            http_header: h
                .http_headers
                .iter()
                .map(|header| HttpHeaderModel {
                    name: header.name.clone(),
                    value: header.value.clone(),
                })
                .collect(),
        }),
        tcp_socket: p.tcp_socket.as_ref().map(|t| TcpSocketModel {
            host: empty_to_none(&t.host),
            port: i64::from(t.port),
        }),
        exec: p.exec.as_ref().map(|e| ExecModel {
            command: e.command.clone(),
        }),
        grpc: p.grpc.as_ref().map(|g| GrpcModel {
            port: g.port.map(i64::from),
            service: empty_to_none(&g.service),
        }),
    });
    (metadata, template, probe)
}

/// The model after a refresh: live values, but where the live spec means the same as what
/// the prior state says (e.g. `labels = {}` vs no labels), the prior's spelling is kept so that
/// equivalent forms never show as a diff.
pub(super) fn refresh(
    prior: &WorkloadGroupModel,
    live: &WorkloadGroup,
    namespace: &str,
    version: IstioApiVersion,
) -> WorkloadGroupModel {
    let mut refreshed = prior.clone();
    if spec_from_model(prior) != live.spec {
        let (metadata, template, probe) = spec_to_model(&live.spec);
        refreshed.metadata = metadata;
        refreshed.template = template;
        refreshed.probe = probe;
    }
    refreshed.labels = managed_entries(live.metadata.labels.as_ref(), &prior.labels);
    refreshed.annotations = managed_entries(live.metadata.annotations.as_ref(), &prior.annotations);
    set_computed(&mut refreshed, live, namespace, version);
    refreshed
}

pub(super) fn model_from_live(
    live: &WorkloadGroup,
    namespace: &str,
    version: IstioApiVersion,
) -> WorkloadGroupModel {
    let (metadata, template, probe) = spec_to_model(&live.spec);
    let mut model = WorkloadGroupModel {
        name: live.metadata.name.clone().unwrap_or_default(),
        namespace: Some(namespace.to_string()),
        labels: non_empty(live.metadata.labels.as_ref()),
        annotations: imported_annotations(live.metadata.annotations.as_ref()),
        metadata,
        template,
        probe,
        ..Default::default()
    };
    set_computed(&mut model, live, namespace, version);
    model
}

pub(super) fn set_computed(
    model: &mut WorkloadGroupModel,
    live: &WorkloadGroup,
    namespace: &str,
    version: IstioApiVersion,
) {
    model.namespace = Some(namespace.to_string());
    model.id = Some(format!("{namespace}/{}", model.name));
    model.uid = live.metadata.uid.clone();
    model.api_version = Some(version.api_version());
}

pub(super) fn object_from_model(model: &WorkloadGroupModel, namespace: &str) -> WorkloadGroup {
    let mut group = WorkloadGroup::new(&model.name, spec_from_model(model));
    group.metadata.namespace = Some(namespace.to_string());
    group.metadata.labels = model.labels.clone().filter(|l| !l.is_empty());
    group.metadata.annotations = model.annotations.clone().filter(|a| !a.is_empty());
    group
}

#[cfg(test)]
mod tests {
    use super::super::seed_group;
    use super::*;

    #[test]
    fn model_and_spec_round_trip() {
        let model = seed_group();
        let spec = spec_from_model(&model);
        let (metadata, template, probe) = spec_to_model(&spec);
        assert_eq!(metadata, model.metadata);
        assert_eq!(template, model.template);
        assert_eq!(probe, model.probe);
    }

    #[test]
    fn repeated_probe_headers_keep_their_order_both_ways() {
        let mut model = seed_group();
        let headers: Vec<HttpHeaderModel> = [("X-Trace", "b"), ("X-A", "1"), ("X-Trace", "a")]
            .into_iter()
            .map(|(name, value)| HttpHeaderModel {
                name: name.into(),
                value: value.into(),
            })
            .collect();
        let http = model.probe.as_mut().unwrap().http_get.as_mut().unwrap();
        http.http_header = headers.clone();
        let spec = spec_from_model(&model);
        let sent: Vec<(&str, &str)> = spec
            .probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .http_headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .collect();
        assert_eq!(sent, [("X-Trace", "b"), ("X-A", "1"), ("X-Trace", "a")]);
        let (_, _, probe) = spec_to_model(&spec);
        assert_eq!(probe.unwrap().http_get.unwrap().http_header, headers);
    }

    #[test]
    fn refresh_keeps_equivalent_spelling_and_shows_real_drift() {
        let mut prior = seed_group();
        prior.template.as_mut().unwrap().labels = Some(BTreeMap::new());
        prior.labels = Some(BTreeMap::new());
        let live = object_from_model(&prior, "default");
        let refreshed = refresh(&prior, &live, "default", IstioApiVersion::V1);
        assert_eq!(refreshed.template, prior.template);
        assert_eq!(refreshed.labels, Some(BTreeMap::new()));

        let mut drifted = live.clone();
        drifted.spec.template.service_account = "other".into();
        let refreshed = refresh(&prior, &drifted, "default", IstioApiVersion::V1);
        assert_eq!(
            refreshed.template.unwrap().service_account.as_deref(),
            Some("other")
        );
    }
}
