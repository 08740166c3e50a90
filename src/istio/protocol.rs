//! How Istio picks a Service port's protocol when `appProtocol` is unset: from the port name,
//! `<protocol>[-<suffix>]` (`pkg/config/kube/conversion.go` `ConvertProtocol`, names as in
//! `pkg/config/protocol/instance.go` `Parse`).

/// Port-name prefixes from which Istio infers the protocol.
pub const PORT_NAME_PROTOCOLS: [&str; 11] = [
    "grpc", "grpc-web", "http", "http2", "https", "mongo", "mysql", "redis", "tcp", "tls", "udp",
];

/// Whether Istio can tell the protocol of a port named `name`.
pub fn has_protocol_prefix(name: &str) -> bool {
    PORT_NAME_PROTOCOLS
        .iter()
        .any(|prefix| name == *prefix || name.starts_with(&format!("{prefix}-")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_count_whole_or_before_a_dash() {
        assert!(has_protocol_prefix("http-web"));
        assert!(has_protocol_prefix("grpc"));
        assert!(!has_protocol_prefix("httpx"));
    }
}
