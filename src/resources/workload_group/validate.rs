//! Plan-time validation of the WorkloadGroup model; every rule names its attribute.

use super::{ProbeModel, TemplateModel, WorkloadGroupModel};
use crate::resources::common::{
    validate_annotations, validate_labels, validate_name, validate_namespace,
};
use crate::tfplug::{AttributePath, Diagnostics};
use crate::validation;

pub(super) fn check(model: &WorkloadGroupModel, diags: &mut Diagnostics) {
    validate_name(&model.name, AttributePath::new("name"), diags);
    if let Some(namespace) = &model.namespace {
        validate_namespace(namespace, AttributePath::new("namespace"), diags);
    }
    validate_labels(&model.labels, AttributePath::new("labels"), diags);
    validate_annotations(&model.annotations, AttributePath::new("annotations"), diags);
    if let Some(metadata) = &model.metadata {
        validate_labels(
            &metadata.labels,
            AttributePath::new("metadata").attr("labels"),
            diags,
        );
        validate_annotations(
            &metadata.annotations,
            AttributePath::new("metadata").attr("annotations"),
            diags,
        );
    }
    if let Some(template) = &model.template {
        validate_template(template, diags);
    }
    if let Some(probe) = &model.probe {
        validate_probe(probe, diags);
    }
    if let Some(timeouts) = &model.timeouts {
        timeouts.validate(diags);
    }
}

fn validate_template(template: &TemplateModel, diags: &mut Diagnostics) {
    let path = AttributePath::new("template");
    for (name, port) in template.ports.iter().flatten() {
        if let Err(problem) = validation::dns1123_label(name) {
            diags.error(
                "Invalid port name",
                problem,
                path.clone().attr("ports").key(name),
            );
        }
        if let Err(problem) = validation::port(*port) {
            diags.error(
                "Invalid port",
                problem,
                path.clone().attr("ports").key(name),
            );
        }
    }
    validate_labels(&template.labels, path.clone().attr("labels"), diags);
    if let Some(weight) = template.weight {
        if !(1..=i64::from(u32::MAX)).contains(&weight) {
            diags.error(
                "Invalid weight",
                format!("weight {weight} is out of range: use 1–4294967295, or leave it unset for Istio's default"),
                path.clone().attr("weight"),
            );
        }
    }
    if let Some(account) = &template.service_account {
        if let Err(problem) = validation::dns1123_subdomain(account) {
            diags.error(
                "Invalid service account",
                problem,
                path.clone().attr("service_account"),
            );
        }
    }
    if let Some(network) = template.network.as_deref().filter(|n| !n.is_empty()) {
        if let Err(problem) = validation::label_value(network) {
            diags.error("Invalid network", problem, path.clone().attr("network"));
        }
    }
}

fn validate_probe(probe: &ProbeModel, diags: &mut Diagnostics) {
    let path = AttributePath::new("probe");
    let at_least = |value: Option<i64>, minimum: i64, name: &str, diags: &mut Diagnostics| {
        if let Some(value) = value.filter(|v| *v < minimum) {
            diags.error(
                format!("Invalid {name}"),
                format!("{name} is {value}: it must be at least {minimum}"),
                path.clone().attr(name),
            );
        }
    };
    at_least(
        probe.initial_delay_seconds,
        0,
        "initial_delay_seconds",
        diags,
    );
    at_least(probe.timeout_seconds, 1, "timeout_seconds", diags);
    at_least(probe.period_seconds, 1, "period_seconds", diags);
    at_least(probe.success_threshold, 1, "success_threshold", diags);
    at_least(probe.failure_threshold, 1, "failure_threshold", diags);
    let handlers = [
        probe.http_get.is_some(),
        probe.tcp_socket.is_some(),
        probe.exec.is_some(),
        probe.grpc.is_some(),
    ];
    if handlers.iter().filter(|set| **set).count() != 1 {
        diags.error(
            "Probe needs exactly one handler",
            "Set exactly one of the blocks `http_get`, `tcp_socket`, `exec` or `grpc` inside `probe`.",
            path.clone(),
        );
    }
    if let Some(http) = &probe.http_get {
        let http_path = path.clone().attr("http_get");
        if let Err(problem) = validation::port(http.port) {
            diags.error("Invalid port", problem, http_path.clone().attr("port"));
        }
        if let Some(scheme) = http
            .scheme
            .as_deref()
            .filter(|s| *s != "HTTP" && *s != "HTTPS")
        {
            diags.error(
                "Invalid scheme",
                format!("scheme {scheme:?} is not supported: use \"HTTP\" or \"HTTPS\""),
                http_path.clone().attr("scheme"),
            );
        }
        for name in http.http_headers.iter().flatten().map(|(k, _)| k) {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                diags.error(
                    "Invalid header name",
                    format!("header name {name:?} must be letters, digits and '-'"),
                    http_path.clone().attr("http_headers").key(name),
                );
            }
        }
    }
    if let Some(tcp) = &probe.tcp_socket {
        if let Err(problem) = validation::port(tcp.port) {
            diags.error(
                "Invalid port",
                problem,
                path.clone().attr("tcp_socket").attr("port"),
            );
        }
    }
    if let Some(exec) = &probe.exec {
        if exec.command.is_empty() {
            diags.error(
                "Invalid command",
                "exec.command must name a command to run.",
                path.clone().attr("exec").attr("command"),
            );
        }
    }
    if let Some(port) = probe.grpc.as_ref().and_then(|g| g.port) {
        if let Err(problem) = validation::port(port) {
            diags.error(
                "Invalid port",
                problem,
                path.clone().attr("grpc").attr("port"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{GroupMetadataModel, HttpGetModel, TcpSocketModel};
    use super::*;
    use std::collections::BTreeMap;

    fn seed_group() -> WorkloadGroupModel {
        WorkloadGroupModel {
            name: "product-vm".into(),
            namespace: Some("default".into()),
            metadata: Some(GroupMetadataModel {
                labels: Some(BTreeMap::from([("app".into(), "product".into())])),
                annotations: None,
            }),
            template: Some(TemplateModel {
                service_account: Some("default".into()),
                ..Default::default()
            }),
            probe: Some(ProbeModel {
                http_get: Some(HttpGetModel {
                    port: 8080,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn errors_for(model: &WorkloadGroupModel) -> Vec<(String, Option<AttributePath>)> {
        let mut diags = Diagnostics::new();
        check(model, &mut diags);
        diags
            .errors()
            .map(|d| (d.summary.clone(), d.path.clone()))
            .collect()
    }

    #[test]
    fn seed_group_is_valid() {
        assert!(errors_for(&seed_group()).is_empty());
    }

    #[test]
    fn each_rule_names_its_attribute() {
        let mut bad = seed_group();
        bad.name = "Product_VM".into();
        assert_eq!(errors_for(&bad)[0].1, Some(AttributePath::new("name")));

        let mut bad = seed_group();
        bad.template.as_mut().unwrap().ports = Some(BTreeMap::from([("http".into(), 70000)]));
        assert_eq!(
            errors_for(&bad)[0].1,
            Some(AttributePath::new("template").attr("ports").key("http"))
        );

        let mut bad = seed_group();
        bad.probe.as_mut().unwrap().failure_threshold = Some(0);
        assert_eq!(
            errors_for(&bad)[0].1,
            Some(AttributePath::new("probe").attr("failure_threshold"))
        );

        let mut bad = seed_group();
        bad.probe.as_mut().unwrap().tcp_socket = Some(TcpSocketModel {
            host: None,
            port: 80,
        });
        assert_eq!(errors_for(&bad)[0].0, "Probe needs exactly one handler");

        let mut bad = seed_group();
        bad.probe
            .as_mut()
            .unwrap()
            .http_get
            .as_mut()
            .unwrap()
            .scheme = Some("FTP".into());
        assert_eq!(
            errors_for(&bad)[0].1,
            Some(AttributePath::new("probe").attr("http_get").attr("scheme"))
        );

        let mut bad = seed_group();
        bad.template.as_mut().unwrap().weight = Some(0);
        assert_eq!(
            errors_for(&bad)[0].1,
            Some(AttributePath::new("template").attr("weight"))
        );

        let mut bad = seed_group();
        bad.template.as_mut().unwrap().service_account = Some("Bad SA".into());
        assert_eq!(
            errors_for(&bad)[0].1,
            Some(AttributePath::new("template").attr("service_account"))
        );

        let mut bad = seed_group();
        bad.metadata.as_mut().unwrap().labels =
            Some(BTreeMap::from([("app".into(), "bad value".into())]));
        assert_eq!(
            errors_for(&bad)[0].1,
            Some(AttributePath::new("metadata").attr("labels").key("app"))
        );
    }
}
