//! How istiod names a Kubernetes Service in the mesh (`pilot/pkg/serviceregistry/kube/conversion.go`,
//! `ServiceHostname`).

/// The domain suffix istiod uses when none is configured (`pkg/config/constants/constants.go`,
/// `DefaultClusterLocalDomain`).
pub const DEFAULT_DOMAIN_SUFFIX: &str = "cluster.local";

/// `<name>.<namespace>.svc.<domain_suffix>`: the host mesh clients use for a Service.
pub fn service_hostname(name: &str, namespace: &str, domain_suffix: &str) -> String {
    format!("{name}.{namespace}.svc.{domain_suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_is_name_namespace_svc_domain() {
        assert_eq!(
            service_hostname("product", "shop", DEFAULT_DOMAIN_SUFFIX),
            "product.shop.svc.cluster.local"
        );
    }
}
