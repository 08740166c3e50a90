//! What the pinned Istio accepts in a WorkloadGroup or WorkloadEntry: the CRD schema
//! (`manifests/charts/base/files/crd-all.gen.yaml`) and istiod's validating webhook
//! (`pkg/config/validation/validation.go`, `ValidateWorkloadGroup`, `validateReadinessProbe`,
//! `validateWorkloadEntry`). The resources' plan-time validation calls these, so a plan fails
//! exactly where the API server would deny the object.

use std::sync::LazyLock;

use regex::Regex;

/// `template.ports` `maxProperties` in the CRD.
pub const MAX_PORTS: usize = 128;
/// `maxProperties` of every labels and annotations map in the CRD.
pub const MAX_LABELS: usize = 256;
/// The CRD's port-name rule is `size(key) < 63`.
const MAX_PORT_NAME_LEN: usize = 62;
/// `template.address` `maxLength` in the CRD.
const MAX_ADDRESS_LEN: usize = 256;
/// Marks a Unix domain socket address (`UnixAddressPrefix` in `pkg/config/validation`).
const UNIX_PREFIX: &str = "unix://";
/// `spec.locality` and `spec.network` `maxLength` in the CRD.
const MAX_LOCALITY_LEN: usize = 2048;

/// The CRD's port-name pattern (upper case allowed, unlike a Kubernetes DNS-1123 label).
static PORT_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$").unwrap());
/// `validProbeHeaderNameRegex` of the webhook (the CRD also allows `_`; the webhook does not).
static PROBE_HEADER_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[-A-Za-z0-9]+$").unwrap());
/// One segment of a Kubernetes object name (DNS-1123 label, lower case).
static NAME_SEGMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$").unwrap()
});

/// Why a gRPC probe is refused: the webhook's `validateReadinessProbe` has no case for it and
/// denies the group with "unknown health check method", although the CRD lists `grpc`.
pub const GRPC_PROBE_REJECTED: &str = "Istio's validating webhook (pkg/config/validation, validateReadinessProbe) denies gRPC readiness probes in a WorkloadGroup (\"unknown health check method\"), although the CRD lists `grpc`. Use `http_get`, `tcp_socket` or `exec` (e.g. `exec { command = [\"grpc_health_probe\", \"-addr=:9090\"] }`).";

/// A `template.ports` key as the CRD accepts it.
pub fn port_name(name: &str) -> Result<(), String> {
    if name.len() > MAX_PORT_NAME_LEN || !PORT_NAME.is_match(name) {
        return Err(format!(
            "port name {name:?} is invalid: 1–{MAX_PORT_NAME_LEN} letters, digits and '-', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// A group's `template.address` as the CRD accepts it: at most 256 bytes, and a `unix://`
/// address is an absolute path or an abstract socket (`@`), not a directory, and comes without
/// ports (the `x-kubernetes-validations` of `template`). The webhook does not look at it.
pub fn template_address(address: &str, has_ports: bool) -> Result<(), String> {
    if address.len() > MAX_ADDRESS_LEN {
        return Err(format!(
            "the address is {} bytes long; Istio allows at most {MAX_ADDRESS_LEN}",
            address.len()
        ));
    }
    let Some(socket) = address.strip_prefix(UNIX_PREFIX) else {
        return Ok(());
    };
    if !(socket.starts_with('/') || socket.starts_with('@')) {
        return Err(format!(
            "{address:?} is not a Unix socket Istio accepts: after `unix://` comes an absolute path (`unix:///run/app.sock`) or an abstract socket (`unix://@app`)"
        ));
    }
    if address.ends_with('/') {
        return Err(format!(
            "{address:?} names a directory; a Unix socket address must name the socket file"
        ));
    }
    if has_ports {
        return Err(format!(
            "a Unix socket address ({address:?}) cannot have ports: remove `template.ports`"
        ));
    }
    Ok(())
}

/// A probe header name as the webhook accepts it.
pub fn probe_header_name(name: &str) -> Result<(), String> {
    if !PROBE_HEADER_NAME.is_match(name) {
        return Err(format!(
            "header name {name:?} must be letters, digits and '-' (istiod's webhook rule)"
        ));
    }
    Ok(())
}

/// Probe timings: the CRD and the webhook accept any non-negative value (0 means Istio's
/// default).
pub fn probe_number(value: i64) -> Result<(), String> {
    if !(0..=i64::from(i32::MAX)).contains(&value) {
        return Err(format!("{value} is out of range: use 0–{}", i32::MAX));
    }
    Ok(())
}

/// `exec.command`: required by the webhook, and no empty item (`minLength: 1` in the CRD).
pub fn exec_command(command: &[String]) -> Result<(), String> {
    if command.is_empty() {
        return Err("exec.command must name a command to run".into());
    }
    if let Some(index) = command.iter().position(String::is_empty) {
        return Err(format!(
            "exec.command[{index}] is empty; the CRD requires every item to be non-empty"
        ));
    }
    Ok(())
}

/// A probe `scheme`: empty, `HTTP` or `HTTPS` (the CRD's rule).
pub fn probe_scheme(scheme: &str) -> Result<(), String> {
    match scheme {
        "" | "HTTP" | "HTTPS" => Ok(()),
        other => Err(format!(
            "scheme {other:?} is not supported: use \"HTTP\" or \"HTTPS\" (or leave it empty)"
        )),
    }
}

/// A `weight`: the CRD takes any uint32, 0 included (0 means Istio's default).
pub fn weight(value: i64) -> Result<(), String> {
    if !(0..=i64::from(u32::MAX)).contains(&value) {
        return Err(format!("weight {value} is out of range: use 0–4294967295"));
    }
    Ok(())
}

/// A network name. istiod puts it into the name of every WorkloadEntry it auto-registers
/// (`<group>-<ip>-<network>`, `autoregisteredWorkloadEntryName` in
/// `pilot/pkg/autoregistration/controller.go`), so it must be valid inside a Kubernetes object
/// name; otherwise istiod cannot create the entry and the VM never registers.
pub fn network(value: &str) -> Result<(), String> {
    if value.len() > 63 || !NAME_SEGMENT.is_match(value) {
        return Err(format!(
            "network {value:?} cannot be used: istiod puts it into the WorkloadEntry name (<group>-<ip>-<network>), so it must be at most 63 lower-case letters, digits, '-' and '.', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// A locality `region[/zone[/subzone]]`. The VM's agent reads it from the proxy label
/// `istio-locality`, turns every `.` into `/` when the value has no `/`
/// (`SanitizeLocalityLabel` in `pkg/model/proxy.go`) and splits it into region, zone and subzone
/// (`ConvertLocality`, same file). So each of at most three parts must be non-empty, and `.` is
/// refused (deliberately stricter than Istio: `us.east` would silently become `us/east`).
pub fn locality(value: &str) -> Result<(), String> {
    let parts: Vec<&str> = value.split('/').collect();
    let bad_part = parts.iter().any(|p| {
        p.is_empty()
            || !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    });
    if value.len() > MAX_LOCALITY_LEN || parts.len() > 3 || bad_part {
        return Err(format!(
            "locality {value:?} must be region, region/zone or region/zone/subzone, each part letters, digits, '-' and '_' ('.' would be read as '/')"
        ));
    }
    Ok(())
}

/// At most `max` entries in one map (the CRD's `maxProperties`).
pub fn at_most(count: usize, max: usize, what: &str) -> Result<(), String> {
    if count > max {
        return Err(format!(
            "{count} {what} given; Istio's CRD allows at most {max}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_names_follow_the_crd() {
        assert!(port_name("http").is_ok());
        assert!(port_name("HTTP-Web").is_ok(), "upper case is accepted");
        assert!(port_name(&"a".repeat(62)).is_ok());
        assert!(port_name(&"a".repeat(63)).is_err(), "size(key) < 63");
        assert!(port_name("-http").is_err());
        assert!(port_name("http_2").is_err());
        assert!(port_name("").is_err());
    }

    #[test]
    fn template_addresses_follow_the_crd() {
        assert!(template_address(&"a".repeat(256), true).is_ok());
        assert!(template_address(&"a".repeat(257), true).is_err());
        assert!(template_address("unix:///run/app.sock", false).is_ok());
        assert!(template_address("unix://@app", false).is_ok());
        assert!(template_address("unix:///run/app.sock", true).is_err());
        assert!(template_address("unix://app.sock", false).is_err());
        assert!(template_address("unix:///run/", false).is_err());
        assert!(template_address("unix://", false).is_err());
        assert!(template_address("vm.example.com", true).is_ok());
    }

    #[test]
    fn probe_values_follow_the_crd_and_the_webhook() {
        assert!(probe_number(0).is_ok());
        assert!(probe_number(-1).is_err());
        assert!(probe_scheme("").is_ok());
        assert!(probe_scheme("HTTPS").is_ok());
        assert!(probe_scheme("https").is_err());
        assert!(weight(0).is_ok());
        assert!(weight(4294967295).is_ok());
        assert!(weight(-1).is_err() && weight(4294967296).is_err());
        assert!(exec_command(&["true".into()]).is_ok());
        assert!(exec_command(&[]).is_err());
        assert!(exec_command(&["sh".into(), "".into()]).is_err());
        assert!(probe_header_name("X-Probe").is_ok());
        assert!(probe_header_name("X_Probe").is_err());
        assert!(probe_header_name("").is_err());
    }

    #[test]
    fn networks_must_fit_into_entry_names() {
        assert!(network("network1").is_ok());
        assert!(network("net.east-1").is_ok());
        assert!(network("Network1").is_err());
        assert!(network("net_1").is_err());
        assert!(network(&"n".repeat(64)).is_err());
    }

    #[test]
    fn localities_have_at_most_three_parts() {
        assert!(locality("us-east1").is_ok());
        assert!(locality("us-east1/us-east1-b/rack_7").is_ok());
        assert!(
            locality("us.east").is_err(),
            "the agent would read it as us/east"
        );
        assert!(locality("a/b/c/d").is_err());
        assert!(locality("a//c").is_err());
        assert!(locality("a/b c").is_err());
    }

    #[test]
    fn map_sizes() {
        assert!(at_most(128, MAX_PORTS, "ports").is_ok());
        assert!(at_most(129, MAX_PORTS, "ports").is_err());
        assert!(at_most(257, MAX_LABELS, "labels").is_err());
    }
}
