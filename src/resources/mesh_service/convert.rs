//! The model and the Service object, both ways, and the refreshed model after a read.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{MeshServiceModel, PortModel, namespace_of};
use crate::istio::service::{DEFAULT_DOMAIN_SUFFIX, service_hostname};
use crate::resources::common::{imported_annotations, managed_entries, non_empty};

pub(super) fn service_from_model(model: &MeshServiceModel) -> Service {
    Service {
        metadata: kube::api::ObjectMeta {
            name: Some(model.name.clone()),
            namespace: Some(namespace_of(model)),
            labels: model.labels.clone().filter(|l| !l.is_empty()),
            annotations: model.annotations.clone().filter(|a| !a.is_empty()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(model.selector.clone()),
            ports: Some(model.ports.iter().map(service_port).collect()),
            type_: model.service_type.clone(),
            session_affinity: model.session_affinity.clone(),
            ..Default::default()
        }),
        status: None,
    }
}

fn service_port(port: &PortModel) -> ServicePort {
    ServicePort {
        name: port.name.clone(),
        port: port.port as i32,
        target_port: port.target_port.as_deref().map(|t| match t.parse::<i32>() {
            Ok(number) => IntOrString::Int(number),
            Err(_) => IntOrString::String(t.to_string()),
        }),
        protocol: port.protocol.clone(),
        app_protocol: port.app_protocol.clone(),
        ..Default::default()
    }
}

/// A port as the API server stores it: defaults made explicit, so a comparison ignores them.
fn normalised_port(port: &PortModel) -> PortModel {
    PortModel {
        name: port.name.clone().filter(|n| !n.is_empty()),
        port: port.port,
        target_port: Some(
            port.target_port
                .clone()
                .unwrap_or_else(|| port.port.to_string()),
        ),
        protocol: Some(port.protocol.clone().unwrap_or_else(|| "TCP".into())),
        app_protocol: port.app_protocol.clone(),
    }
}

fn port_from_live(port: &ServicePort) -> PortModel {
    PortModel {
        name: port.name.clone().filter(|n| !n.is_empty()),
        port: i64::from(port.port),
        target_port: port.target_port.as_ref().map(|t| match t {
            IntOrString::Int(number) => number.to_string(),
            IntOrString::String(name) => name.clone(),
        }),
        protocol: port.protocol.clone(),
        app_protocol: port.app_protocol.clone(),
    }
}

/// Keeps the prior's spelling of everything the live Service means the same way (defaults
/// filled in by the API server are not drift), takes live values where they really differ.
pub(super) fn refresh(prior: &MeshServiceModel, live: &Service) -> MeshServiceModel {
    let mut refreshed = prior.clone();
    let spec = live.spec.clone().unwrap_or_default();
    let live_ports: Vec<PortModel> = spec.ports.iter().flatten().map(port_from_live).collect();
    let same_ports = live_ports.iter().map(normalised_port).collect::<Vec<_>>()
        == prior.ports.iter().map(normalised_port).collect::<Vec<_>>();
    if !same_ports {
        refreshed.ports = live_ports;
    }
    refreshed.selector = spec.selector.clone().unwrap_or_default();
    if spec.type_.as_deref().unwrap_or("ClusterIP")
        != prior.service_type.as_deref().unwrap_or("ClusterIP")
    {
        refreshed.service_type = spec.type_.clone();
    }
    if spec.session_affinity.as_deref().unwrap_or("None")
        != prior.session_affinity.as_deref().unwrap_or("None")
    {
        refreshed.session_affinity = spec.session_affinity.clone();
    }
    refreshed.labels = managed_entries(live.metadata.labels.as_ref(), &prior.labels);
    refreshed.annotations = managed_entries(live.metadata.annotations.as_ref(), &prior.annotations);
    set_computed(&mut refreshed, live);
    refreshed
}

pub(super) fn model_from_live(live: &Service) -> MeshServiceModel {
    let spec = live.spec.clone().unwrap_or_default();
    let mut model = MeshServiceModel {
        name: live.metadata.name.clone().unwrap_or_default(),
        namespace: live.metadata.namespace.clone(),
        labels: non_empty(live.metadata.labels.as_ref()),
        annotations: imported_annotations(live.metadata.annotations.as_ref()),
        selector: spec.selector.clone().unwrap_or_default(),
        ports: spec
            .ports
            .iter()
            .flatten()
            .map(port_from_live)
            .map(|p| simplify_port(&p))
            .collect(),
        service_type: spec.type_.clone().filter(|t| t != "ClusterIP"),
        session_affinity: spec.session_affinity.clone().filter(|a| a != "None"),
        ..Default::default()
    };
    set_computed(&mut model, live);
    model
}

/// Drops values equal to their defaults, the way a user would write the port.
fn simplify_port(port: &PortModel) -> PortModel {
    PortModel {
        target_port: port
            .target_port
            .clone()
            .filter(|t| *t != port.port.to_string()),
        protocol: port.protocol.clone().filter(|p| p != "TCP"),
        ..port.clone()
    }
}

pub(super) fn set_computed(model: &mut MeshServiceModel, live: &Service) {
    let namespace = namespace_of(model);
    model.namespace = Some(namespace.clone());
    model.id = Some(format!("{namespace}/{}", model.name));
    model.cluster_ip = live.spec.as_ref().and_then(|s| s.cluster_ip.clone());
    let domain = model
        .cluster_domain
        .as_deref()
        .unwrap_or(DEFAULT_DOMAIN_SUFFIX);
    model.hostname = Some(service_hostname(&model.name, &namespace, domain));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::mesh_service::tests::base;

    #[test]
    fn server_defaults_are_not_drift() {
        let prior = base();
        let mut live = service_from_model(&prior);
        let port = &mut live.spec.as_mut().unwrap().ports.as_mut().unwrap()[0];
        port.protocol = Some("TCP".into());
        port.target_port = Some(IntOrString::Int(8080));
        live.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
        live.spec.as_mut().unwrap().session_affinity = Some("None".into());
        let refreshed = refresh(&prior, &live);
        assert_eq!(refreshed.ports, prior.ports);
        assert_eq!(refreshed.service_type, None);
        live.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].port = 9999;
        assert_eq!(refresh(&prior, &live).ports[0].port, 9999);
    }
}
