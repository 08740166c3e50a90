//! Plan-time validation of the WorkloadGroup model; every rule names its attribute.

use std::collections::BTreeMap;

use super::{ProbeModel, TemplateModel, WorkloadGroupModel};
use crate::istio::rules;
use crate::resources::common::{
    validate_annotations, validate_config, validate_labels, validate_name, validate_namespace,
};
use crate::tfplug::{AttributePath, Diagnostics, Value};
use crate::validation;

/// Plan-time validation of a configuration; judgements on values not known yet are dropped.
pub(super) fn config(config: &Value, diags: &mut Diagnostics) {
    validate_config::<WorkloadGroupModel>(config, diags, check);
}

pub(super) fn check(model: &WorkloadGroupModel, diags: &mut Diagnostics) {
    validate_name(&model.name, AttributePath::new("name"), diags);
    if let Some(namespace) = &model.namespace {
        validate_namespace(namespace, AttributePath::new("namespace"), diags);
    }
    validate_labels(&model.labels, AttributePath::new("labels"), diags);
    validate_annotations(&model.annotations, AttributePath::new("annotations"), diags);
    if let Some(metadata) = &model.metadata {
        let path = AttributePath::new("metadata");
        validate_label_count(&metadata.labels, path.clone().attr("labels"), diags);
        validate_label_count(&metadata.annotations, path.attr("annotations"), diags);
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
    if let Some(timeouts) = &model.apply.timeouts {
        timeouts.validate(diags);
    }
}

fn validate_template(template: &TemplateModel, diags: &mut Diagnostics) {
    let path = AttributePath::new("template");
    let ports = template.ports.as_ref();
    if let Err(problem) = rules::at_most(ports.map_or(0, |p| p.len()), rules::MAX_PORTS, "ports") {
        diags.error("Too many ports", problem, path.clone().attr("ports"));
    }
    for (name, port) in ports.into_iter().flatten() {
        if let Err(problem) = rules::port_name(name) {
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
    if let Some(address) = &template.address {
        let has_ports = ports.is_some_and(|p| !p.is_empty());
        if let Err(problem) = rules::template_address(address, has_ports) {
            diags.error("Invalid address", problem, path.clone().attr("address"));
        }
    }
    validate_label_count(&template.labels, path.clone().attr("labels"), diags);
    validate_labels(&template.labels, path.clone().attr("labels"), diags);
    if let Some(Err(problem)) = template.weight.map(rules::weight) {
        diags.error("Invalid weight", problem, path.clone().attr("weight"));
    }
    if let Some(account) = &template.service_account
        && let Err(problem) = validation::dns1123_subdomain(account)
    {
        diags.error(
            "Invalid service account",
            problem,
            path.clone().attr("service_account"),
        );
    }
    if let Some(network) = template.network.as_deref().filter(|n| !n.is_empty())
        && let Err(problem) = rules::network(network)
    {
        diags.error("Invalid network", problem, path.clone().attr("network"));
    }
    if let Some(locality) = template.locality.as_deref().filter(|l| !l.is_empty())
        && let Err(problem) = rules::locality(locality)
    {
        diags.error("Invalid locality", problem, path.clone().attr("locality"));
    }
}

/// The CRD's `maxProperties` on labels and annotations maps.
fn validate_label_count(
    labels: &Option<BTreeMap<String, String>>,
    path: AttributePath,
    diags: &mut Diagnostics,
) {
    let count = labels.as_ref().map_or(0, BTreeMap::len);
    if let Err(problem) = rules::at_most(count, rules::MAX_LABELS, "entries") {
        diags.error("Too many entries", problem, path);
    }
}

fn validate_probe(probe: &ProbeModel, diags: &mut Diagnostics) {
    let path = AttributePath::new("probe");
    for (name, value) in [
        ("initial_delay_seconds", probe.initial_delay_seconds),
        ("timeout_seconds", probe.timeout_seconds),
        ("period_seconds", probe.period_seconds),
        ("success_threshold", probe.success_threshold),
        ("failure_threshold", probe.failure_threshold),
    ] {
        if let Some(Err(problem)) = value.map(rules::probe_number) {
            diags.error(format!("Invalid {name}"), problem, path.clone().attr(name));
        }
    }
    let handlers = [
        ("http_get", probe.http_get.is_some()),
        ("tcp_socket", probe.tcp_socket.is_some()),
        ("exec", probe.exec.is_some()),
        ("grpc", probe.grpc.is_some()),
    ];
    let set: Vec<&str> = handlers
        .iter()
        .filter(|(_, set)| *set)
        .map(|(name, _)| *name)
        .collect();
    if set.len() != 1 {
        // Terraform shows the line of a block only through a path into it: the second
        // handler's block when there are several, the `probe` block when there is none.
        let at = set.get(1).copied().unwrap_or("http_get");
        diags.error(
            "Probe needs exactly one handler",
            "Set exactly one of the blocks `http_get`, `tcp_socket` or `exec` inside `probe`.",
            path.clone().attr(at),
        );
    }
    if let Some(http) = &probe.http_get {
        let http_path = path.clone().attr("http_get");
        if let Err(problem) = validation::port(http.port) {
            diags.error("Invalid port", problem, http_path.clone().attr("port"));
        }
        if let Some(Err(problem)) = http.scheme.as_deref().map(rules::probe_scheme) {
            diags.error("Invalid scheme", problem, http_path.clone().attr("scheme"));
        }
        for (index, header) in http.http_header.iter().enumerate() {
            if let Err(problem) = rules::probe_header_name(&header.name) {
                diags.error(
                    "Invalid header name",
                    problem,
                    http_path
                        .clone()
                        .attr("http_header")
                        .index(index as i64)
                        .attr("name"),
                );
            }
        }
    }
    if let Some(tcp) = &probe.tcp_socket
        && let Err(problem) = validation::port(tcp.port)
    {
        diags.error(
            "Invalid port",
            problem,
            path.clone().attr("tcp_socket").attr("port"),
        );
    }
    if let Some(exec) = &probe.exec
        && let Err(problem) = rules::exec_command(&exec.command)
    {
        diags.error(
            "Invalid command",
            problem,
            path.clone().attr("exec").attr("command"),
        );
    }
    if probe.grpc.is_some() {
        diags.error(
            "gRPC probes are not accepted by Istio",
            rules::GRPC_PROBE_REJECTED,
            path.clone().attr("grpc"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::seed_group;
    use super::super::{ExecModel, GrpcModel, HttpHeaderModel, TcpSocketModel};
    use super::*;

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
    fn repeated_header_names_are_valid_and_a_bad_one_is_named_by_index() {
        let header = |name: &str, value: &str| HttpHeaderModel {
            name: name.into(),
            value: value.into(),
        };
        let mut group = seed_group();
        http_of(&mut group).http_header = vec![header("X-Trace", "a"), header("X-Trace", "b")];
        assert!(errors_for(&group).is_empty());

        http_of(&mut group).http_header.push(header("X_Bad", "c"));
        assert_eq!(
            errors_for(&group),
            vec![(
                "Invalid header name".to_string(),
                Some(
                    AttributePath::new("probe")
                        .attr("http_get")
                        .attr("http_header")
                        .index(2)
                        .attr("name")
                )
            )]
        );
    }

    fn http_of(group: &mut WorkloadGroupModel) -> &mut super::super::HttpGetModel {
        group.probe.as_mut().unwrap().http_get.as_mut().unwrap()
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
        bad.probe.as_mut().unwrap().failure_threshold = Some(-1);
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
        bad.template.as_mut().unwrap().weight = Some(-1);
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

    type Change = Box<dyn Fn(&mut WorkloadGroupModel)>;

    #[test]
    fn validation_matches_istio_on_the_listed_cases() {
        let accepted: Vec<(&str, Change)> = vec![
            (
                "probe numbers of 0",
                Box::new(|g| {
                    let p = g.probe.as_mut().unwrap();
                    p.initial_delay_seconds = Some(0);
                    p.timeout_seconds = Some(0);
                    p.period_seconds = Some(0);
                    p.success_threshold = Some(0);
                    p.failure_threshold = Some(0);
                }),
            ),
            (
                "empty scheme",
                Box::new(|g| {
                    g.probe.as_mut().unwrap().http_get.as_mut().unwrap().scheme =
                        Some(String::new());
                }),
            ),
            (
                "weight 0",
                Box::new(|g| g.template.as_mut().unwrap().weight = Some(0)),
            ),
            (
                "upper-case port name",
                Box::new(|g| {
                    g.template.as_mut().unwrap().ports =
                        Some(BTreeMap::from([("HTTP-Web".into(), 8080)]));
                }),
            ),
            (
                "port name of 62 characters",
                Box::new(|g| {
                    g.template.as_mut().unwrap().ports =
                        Some(BTreeMap::from([("p".repeat(62), 8080)]));
                }),
            ),
        ];
        for (case, change) in accepted {
            let mut group = seed_group();
            change(&mut group);
            assert_eq!(errors_for(&group), vec![], "Istio accepts {case}");
        }
        let rejected: Vec<(&str, Change)> = vec![
            (
                "port name of 63 characters",
                Box::new(|g| {
                    g.template.as_mut().unwrap().ports =
                        Some(BTreeMap::from([("p".repeat(63), 8080)]));
                }),
            ),
            (
                "an empty string in exec.command",
                Box::new(|g| {
                    let p = g.probe.as_mut().unwrap();
                    p.http_get = None;
                    p.exec = Some(ExecModel {
                        command: vec!["check".into(), String::new()],
                    });
                }),
            ),
            (
                "257 template labels",
                Box::new(|g| {
                    g.template.as_mut().unwrap().labels = Some(
                        (0..257)
                            .map(|i| (format!("k{i}"), "v".to_string()))
                            .collect(),
                    );
                }),
            ),
            (
                "257 metadata labels",
                Box::new(|g| {
                    g.metadata.as_mut().unwrap().labels = Some(
                        (0..257)
                            .map(|i| (format!("k{i}"), "v".to_string()))
                            .collect(),
                    );
                }),
            ),
            (
                "129 ports",
                Box::new(|g| {
                    g.template.as_mut().unwrap().ports =
                        Some((0..129).map(|i| (format!("p{i}"), 1000 + i)).collect());
                }),
            ),
            (
                "a gRPC probe (the webhook has no case for it)",
                Box::new(|g| {
                    let p = g.probe.as_mut().unwrap();
                    p.http_get = None;
                    p.grpc = Some(GrpcModel {
                        port: Some(9090),
                        service: None,
                    });
                }),
            ),
            (
                "a network istiod cannot put into an entry name",
                Box::new(|g| {
                    g.template.as_mut().unwrap().network = Some("Net_1".into());
                }),
            ),
            (
                "a locality of four parts",
                Box::new(|g| {
                    g.template.as_mut().unwrap().locality = Some("a/b/c/d".into());
                }),
            ),
        ];
        for (case, change) in rejected {
            let mut group = seed_group();
            change(&mut group);
            assert!(!errors_for(&group).is_empty(), "Istio rejects {case}");
        }
    }
}
