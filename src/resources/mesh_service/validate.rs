//! Plan-time validation of the Service model; every rule names its attribute.

use std::collections::BTreeSet;

use super::{MeshServiceModel, PortModel};
use crate::istio::protocol::has_protocol_prefix;
use crate::resources::common::{
    validate_annotations, validate_config, validate_labels, validate_namespace,
};
use crate::tfplug::{AttributePath, Diagnostics, Value};
use crate::validation;

/// Plan-time validation of a configuration; judgements on values not known yet are dropped.
pub(super) fn config(config: &Value, diags: &mut Diagnostics) {
    validate_config::<MeshServiceModel>(config, diags, |model, diags| check(model, config, diags));
}

pub(super) fn check(model: &MeshServiceModel, config: &Value, diags: &mut Diagnostics) {
    if config.get_attr("name").is_some_and(Value::is_known)
        && let Err(problem) = validation::dns1123_label(&model.name)
    {
        diags.error("Invalid name", problem, AttributePath::new("name"));
    }
    if let Some(namespace) = &model.namespace {
        validate_namespace(namespace, AttributePath::new("namespace"), diags);
    }
    validate_labels(&model.labels, AttributePath::new("labels"), diags);
    validate_annotations(&model.annotations, AttributePath::new("annotations"), diags);
    if config
        .get_attr("selector")
        .is_some_and(Value::is_fully_known)
        && model.selector.is_empty()
    {
        diags.error(
            "Empty selector",
            "selector must name at least one label (e.g. app = \"product\"): an empty selector would select nothing for VMs and is reserved for Services without selectors.",
            AttributePath::new("selector"),
        );
    }
    validate_labels(
        &Some(model.selector.clone()),
        AttributePath::new("selector"),
        diags,
    );
    validate_ports(&model.ports, diags);
    if let Some(kind) = model
        .service_type
        .as_deref()
        .filter(|t| !["ClusterIP", "NodePort", "LoadBalancer"].contains(t))
    {
        diags.error(
            "Invalid type",
            format!("type {kind:?} is not supported: use ClusterIP, NodePort or LoadBalancer"),
            AttributePath::new("type"),
        );
    }
    if let Some(affinity) = model
        .session_affinity
        .as_deref()
        .filter(|a| !["None", "ClientIP"].contains(a))
    {
        diags.error(
            "Invalid session_affinity",
            format!("{affinity:?} is not supported: use None or ClientIP"),
            AttributePath::new("session_affinity"),
        );
    }
    if let Some(domain) = &model.cluster_domain
        && let Err(problem) = validation::dns1123_subdomain(domain)
    {
        diags.error(
            "Invalid cluster_domain",
            problem,
            AttributePath::new("cluster_domain"),
        );
    }
    if let Some(wait) = &model.wait {
        if wait.min_healthy_endpoints < 1 {
            diags.error(
                "Invalid min_healthy_endpoints",
                "min_healthy_endpoints must be at least 1",
                AttributePath::new("wait").attr("min_healthy_endpoints"),
            );
        }
        if let Some(Err(problem)) = wait.timeout.as_deref().map(validation::duration) {
            diags.error(
                "Invalid timeout",
                problem,
                AttributePath::new("wait").attr("timeout"),
            );
        }
    }
    if let Some(timeouts) = &model.apply.timeouts {
        timeouts.validate(diags);
    }
}

fn validate_ports(ports: &[PortModel], diags: &mut Diagnostics) {
    let mut names = BTreeSet::new();
    let mut numbers = BTreeSet::new();
    for (index, port) in ports.iter().enumerate() {
        let path = AttributePath::new("ports").index(index as i64);
        if let Err(problem) = validation::port(port.port) {
            diags.error("Invalid port", problem, path.clone().attr("port"));
        }
        let protocol = port.protocol.as_deref().unwrap_or("TCP");
        if !["TCP", "UDP", "SCTP"].contains(&protocol) {
            diags.error(
                "Invalid protocol",
                format!("protocol {protocol:?} is not supported: use TCP, UDP or SCTP"),
                path.clone().attr("protocol"),
            );
        }
        if !numbers.insert((port.port, protocol.to_string())) {
            diags.error(
                "Duplicate port",
                format!("port {} / {protocol} appears more than once", port.port),
                path.clone().attr("port"),
            );
        }
        match port.name.as_deref() {
            Some(name) => {
                if let Err(problem) = validation::dns1123_label(name) {
                    diags.error("Invalid port name", problem, path.clone().attr("name"));
                }
                if !names.insert(name.to_string()) {
                    diags.error(
                        "Duplicate port name",
                        format!("port name {name:?} appears more than once"),
                        path.clone().attr("name"),
                    );
                }
                if port.app_protocol.is_none() && !has_protocol_prefix(name) {
                    diags.warning(
                        "Istio cannot tell this port's protocol",
                        format!("Port name {name:?} has no Istio protocol prefix (http-, grpc-, tcp-, …) and `app_protocol` is unset, so Istio treats the traffic as opaque TCP (or sniffs it). Name it e.g. \"http-{name}\" or set app_protocol."),
                        path.clone().attr("name"),
                    );
                }
            }
            None if ports.len() > 1 => diags.error(
                "Missing port name",
                "Every port needs a name when the Service has more than one port.",
                path.clone().attr("name"),
            ),
            None => {}
        }
        if let Some(target) = port.target_port.as_deref() {
            let valid = match target.parse::<i64>() {
                Ok(number) => validation::port(number).is_ok(),
                Err(_) => validation::dns1123_label(target).is_ok() && target.len() <= 15,
            };
            if !valid {
                diags.error(
                    "Invalid target_port",
                    format!("{target:?} must be a port number 1–65535 or a port name of at most 15 characters"),
                    path.clone().attr("target_port"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::mesh_service::tests::base;
    use crate::tfplug::{Schema, encode};

    fn diagnostics(model: &MeshServiceModel) -> Diagnostics {
        let schema = Schema::from_model::<MeshServiceModel>(0);
        let config = encode(model, &schema, &mut Diagnostics::new()).unwrap();
        let mut diags = Diagnostics::new();
        check(model, &config, &mut diags);
        diags
    }

    #[test]
    fn valid_service_has_no_errors_or_warnings() {
        let diags = diagnostics(&base());
        assert!(diags.is_empty(), "{diags:?}");
    }

    #[test]
    fn rules_name_their_attributes() {
        let port = |name: &str, number: i64| PortModel {
            name: Some(name.into()),
            port: number,
            ..Default::default()
        };
        type BreakIt = fn(&mut MeshServiceModel);
        let cases: Vec<(BreakIt, AttributePath)> = vec![
            (|m| m.selector.clear(), AttributePath::new("selector")),
            (
                |m| m.ports[0].port = 0,
                AttributePath::new("ports").index(0).attr("port"),
            ),
            (
                |m| m.ports[0].protocol = Some("ICMP".into()),
                AttributePath::new("ports").index(0).attr("protocol"),
            ),
        ];
        for (break_it, path) in cases {
            let mut m = base();
            break_it(&mut m);
            assert_eq!(diagnostics(&m).errors().next().unwrap().path, Some(path));
        }
        for (extra, path) in [
            (
                port("http", 9090),
                AttributePath::new("ports").index(1).attr("name"),
            ),
            (
                port("grpc", 8080),
                AttributePath::new("ports").index(1).attr("port"),
            ),
        ] {
            let mut m = base();
            m.ports.push(extra);
            assert_eq!(diagnostics(&m).errors().next().unwrap().path, Some(path));
        }
    }

    #[test]
    fn unprefixed_port_name_warns_unless_app_protocol_is_set() {
        let mut m = base();
        m.ports[0].name = Some("web".into());
        let diags = diagnostics(&m);
        assert!(!diags.has_errors());
        assert!(!diags.is_empty(), "expected a warning");
        m.ports[0].app_protocol = Some("http".into());
        assert!(diagnostics(&m).is_empty());
    }
}
