//! Syntax rules shared by every resource's plan-time validation. Each returns a sentence that
//! states the rule, so the diagnostic tells the user what to write instead.

use std::sync::LazyLock;

use regex::Regex;

static DNS1123_LABEL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").unwrap());
static DNS1123_SUBDOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$").unwrap()
});
static LABEL_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$").unwrap());

/// A DNS-1123 label: namespaces, Service names, revisions.
pub fn dns1123_label(value: &str) -> Result<(), String> {
    if value.len() > 63 || !DNS1123_LABEL.is_match(value) {
        return Err(format!(
            "{value:?} is not a valid DNS-1123 label: at most 63 characters, lower-case letters, digits and '-', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// A DNS-1123 subdomain: names of most Kubernetes objects.
pub fn dns1123_subdomain(value: &str) -> Result<(), String> {
    if value.len() > 253 || !DNS1123_SUBDOMAIN.is_match(value) {
        return Err(format!(
            "{value:?} is not a valid DNS-1123 subdomain: at most 253 characters, lower-case letters, digits, '-' and '.', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// A label or annotation key: optional DNS-subdomain prefix and '/', then a name of at most
/// 63 characters.
pub fn qualified_name(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && (prefix.is_empty() || dns1123_subdomain(prefix).is_err())
    {
        return Err(format!(
            "key {key:?} has an invalid prefix: it must be a DNS-1123 subdomain such as example.com"
        ));
    }
    if name.is_empty() || name.len() > 63 || !LABEL_NAME.is_match(name) {
        return Err(format!(
            "key {key:?} is invalid: the name part must be 1–63 characters of letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// A label value: empty, or at most 63 characters of the label-name alphabet.
pub fn label_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    if value.len() > 63 || !LABEL_NAME.is_match(value) {
        return Err(format!(
            "label value {value:?} is invalid: at most 63 characters of letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// A TCP/UDP port number.
pub fn port(value: i64) -> Result<(), String> {
    if !(1..=65535).contains(&value) {
        return Err(format!("port {value} is out of range: use 1–65535"));
    }
    Ok(())
}

/// A Terraform-style duration such as `90s`, `5m`, `1h30m` (Go's `time.ParseDuration` units
/// h, m, s, ms). Used by `timeouts` blocks and token lifetimes.
pub fn duration(text: &str) -> Result<std::time::Duration, String> {
    let problem = || {
        format!(
            "{text:?} is not a duration: write a number with a unit, e.g. \"30s\", \"5m\" or \"1h30m\""
        )
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(problem());
    }
    let mut total = std::time::Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(problem)?;
        if digits == 0 {
            return Err(problem());
        }
        let amount: u64 = rest[..digits].parse().map_err(|_| problem())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return Err(problem()),
        };
        total += std::time::Duration::from_secs_f64(amount as f64 * seconds_per_unit);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_go_style_units() {
        assert_eq!(duration("90s").unwrap().as_secs(), 90);
        assert_eq!(duration("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(duration("250ms").unwrap().as_millis(), 250);
        assert!(duration("5").is_err());
        assert!(duration("5 minutes").is_err());
        assert!(duration("").is_err());
    }

    #[test]
    fn labels_accept_valid_and_reject_invalid() {
        assert!(dns1123_label("product-vm").is_ok());
        assert!(dns1123_label("Product").is_err());
        assert!(dns1123_label("-a").is_err());
        assert!(dns1123_label(&"a".repeat(64)).is_err());
    }

    #[test]
    fn subdomains_allow_dots() {
        assert!(dns1123_subdomain("a.b-c").is_ok());
        assert!(dns1123_subdomain("a..b").is_err());
    }

    #[test]
    fn qualified_names_check_prefix_and_name() {
        assert!(qualified_name("app").is_ok());
        assert!(qualified_name("topology.istio.io/network").is_ok());
        assert!(qualified_name("Bad Key").is_err());
        assert!(qualified_name("/x").is_err());
        assert!(qualified_name("UPPER.example/x").is_err());
    }

    #[test]
    fn label_values_may_be_empty() {
        assert!(label_value("").is_ok());
        assert!(label_value("v1.2_3").is_ok());
        assert!(label_value("has space").is_err());
    }

    #[test]
    fn ports_are_bounded() {
        assert!(port(1).is_ok());
        assert!(port(65535).is_ok());
        assert!(port(0).is_err());
        assert!(port(65536).is_err());
    }
}
