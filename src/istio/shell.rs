//! Shell quoting for `cluster.env`, as istioctl's `pkg/util/shellescape.Quote` does it (`istioctl/pkg/workload/workload.go` (`createClusterEnv`)).
//!
//! Istio's pattern is the Go raw string `[^\\w@%+=:,./-]`; inside a raw string `\\` is a literal
//! backslash, so the class is "backslash, the letter w, and `@%+=:,./-`" rather than "word
//! characters". That is why istioctl quotes almost every value (`CANONICAL_REVISION='latest'`).
//! We reproduce it so our cluster.env is byte-identical, with one deliberate difference: a
//! backslash is always quoted, because an unquoted trailing `\` would join the next line when the
//! file is sourced by `istio-start.sh`.

/// Quotes `value` for a `KEY=value` line of a file sourced by `sh`.
pub fn quote(value: &str) -> String {
    if value.is_empty() {
        return "''".to_string();
    }
    if value.chars().all(is_left_bare) {
        return value.to_string();
    }
    // Close the quote, emit a double-quoted ', reopen: the portable way to embed ' in '...'.
    format!("'{}'", value.replace('\'', r#"'"'"'"#))
}

/// Characters istioctl leaves unquoted (minus the backslash, see the module comment).
fn is_left_bare(c: char) -> bool {
    matches!(c, 'w' | '@' | '%' | '+' | '=' | ':' | ',' | '.' | '/' | '-')
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quotes_like_istioctl() {
        // Values taken from istioctl's golden cluster.env (`istioctl/pkg/workload/workload.go` (`createClusterEnv`)).
        assert_eq!(quote("latest"), "'latest'");
        assert_eq!(quote("*"), "'*'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("10.10.10.10"), "'10.10.10.10'");
        assert_eq!(
            quote("istiod-rev-1.istio-system.svc:15012"),
            "'istiod-rev-1.istio-system.svc:15012'"
        );
        // Only the odd class of Istio's pattern stays bare.
        assert_eq!(quote("www"), "www");
        assert_eq!(quote("-./:,"), "-./:,");
    }

    #[test]
    fn embeds_single_quotes_and_backslashes_safely() {
        assert_eq!(quote("it's"), r#"'it'"'"'s'"#);
        assert_eq!(quote(r"\"), r"'\'");
        assert_eq!(quote(r#"{"a":"b c"}"#), r#"'{"a":"b c"}'"#);
    }

    #[test]
    fn sh_reads_back_exactly_what_we_quoted() {
        let values = [
            "it's going to need single quotes",
            r#"{"key": "value"}"#,
            "",
            "a b",
            r"w\",
            "$HOME `x`",
        ];
        for original in values {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("V={}; printf %s \"$V\"", quote(original)))
                .output()
                .expect("sh");
            assert_eq!(String::from_utf8(out.stdout).unwrap(), original);
        }
    }
}
