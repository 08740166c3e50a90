//! A YAML writer for JSON values that produces what istioctl writes for mesh.yaml.
//!
//! istioctl turns the ProxyConfig into a JSON map and hands it to `sigs.k8s.io/yaml`, which
//! re-parses the JSON and emits it with go-yaml v2 (`istioctl/pkg/workload/workload.go` (`createMeshConfig`) step 6). To give byte-identical files we
//! follow go-yaml v2's visible rules:
//! - block style, two-space indent for maps, sequences not indented under their key, `{}`/`[]`
//!   for empty collections;
//! - map keys in go-yaml's "natural" order: runs of digits compare as numbers and a non-letter
//!   sorts before a letter (so `ISTIO_META_WORKLOAD_NAME` < `ISTIO_METAJSON_LABELS`);
//! - a string that YAML 1.1 would read as something else (`"true"`, `""`, `"8080"`, `"1:20"`) is
//!   double-quoted; a string that cannot be plain (starts with `{`, contains `: `) is
//!   single-quoted; anything else is plain.
//!
//! Known, deliberate differences (values still read back identically): multi-line strings are
//! double-quoted instead of `|` literal blocks, long lines are never folded at 80 columns, and the
//! "is it a number" test is slightly more eager to quote than go-yaml's (quoting never changes a
//! value; leaving something plain that YAML 1.1 would retype would).

use std::cmp::Ordering;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

/// Renders `value` as a YAML document the way `sigs.k8s.io/yaml.Marshal` would.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        scalar => {
            out.push_str(&inline_value(scalar));
            out.push('\n');
        }
    }
    out
}

/// Map entries, each on its own line at `indent`.
fn write_map(out: &mut String, map: &serde_json::Map<String, Value>, indent: usize) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by(|a, b| natural_key_order(a, b));
    for key in keys {
        out.push_str(&" ".repeat(indent));
        out.push_str(&scalar_string(key));
        out.push(':');
        write_nested(out, &map[key.as_str()], indent, NestedIn::Map);
    }
}

/// Sequence items at `indent` (go-yaml v2 does not indent a sequence under its map key).
fn write_seq(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        write_nested(out, item, indent, NestedIn::Seq);
    }
}

#[derive(Clone, Copy, PartialEq)]
enum NestedIn {
    Map,
    Seq,
}

/// Writes what follows `key:` or `-`: a scalar on the same line, or a block on the next lines.
/// A collection inside a sequence item starts on the item's line (`- name: x`).
fn write_nested(out: &mut String, value: &Value, indent: usize, parent: NestedIn) {
    match (value, parent) {
        (Value::Object(map), NestedIn::Map) if !map.is_empty() => {
            out.push('\n');
            write_map(out, map, indent + 2);
        }
        (Value::Array(items), NestedIn::Map) if !items.is_empty() => {
            out.push('\n');
            write_seq(out, items, indent);
        }
        (Value::Object(map), NestedIn::Seq) if !map.is_empty() => {
            out.push(' ');
            let mut block = String::new();
            write_map(&mut block, map, indent + 2);
            out.push_str(block.trim_start());
        }
        (Value::Array(items), NestedIn::Seq) if !items.is_empty() => {
            out.push(' ');
            let mut block = String::new();
            write_seq(&mut block, items, indent + 2);
            out.push_str(block.trim_start());
        }
        (scalar, _) => {
            out.push(' ');
            out.push_str(&inline_value(scalar));
            out.push('\n');
        }
    }
}

/// A scalar or empty collection as it appears after `key: `.
fn inline_value(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar_string(s),
        Value::Array(_) => "[]".to_string(),
        Value::Object(_) => "{}".to_string(),
    }
}

/// A string (value or key) in the style go-yaml v2 picks for it.
pub fn scalar_string(s: &str) -> String {
    if s.contains('\n') || s.chars().any(|c| !is_printable(c)) || yaml11_retypes(s) {
        return double_quoted(s);
    }
    if plain_allowed(s) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "''"))
}

/// Would a YAML 1.1 reader (go-yaml v2, the agent's parser) read this plain text as a non-string?
fn yaml11_retypes(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF", "<<",
    ];
    static INT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^[-+]?(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|[0-9]+)$").unwrap()
    });
    static FLOAT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$").unwrap()
    });
    static BASE60: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$").unwrap());
    static TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[0-9]{4}-").unwrap());
    if WORDS.contains(&s) {
        return true;
    }
    // go-yaml ignores `_` in numbers; so do we before matching.
    let digits = s.replace('_', "");
    INT.is_match(&digits) || FLOAT.is_match(&digits) || BASE60.is_match(s) || TIMESTAMP.is_match(s)
}

/// libyaml's "plain scalar allowed in block context" analysis, for single-line printable text.
fn plain_allowed(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let (Some(&first), Some(&last)) = (chars.first(), chars.last()) else {
        return false;
    };
    if s.starts_with("---") || s.starts_with("...") || first == ' ' || last == ' ' {
        return false;
    }
    let followed_by_blank = |i: usize| chars.get(i + 1).is_none_or(|c| *c == ' ');
    if "#,[]{}&*!|>'\"%@`".contains(first) {
        return false;
    }
    if matches!(first, '?' | ':' | '-') && followed_by_blank(0) {
        return false;
    }
    for (i, &c) in chars.iter().enumerate().skip(1) {
        if c == ':' && followed_by_blank(i) {
            return false;
        }
        if c == '#' && chars[i - 1] == ' ' {
            return false;
        }
    }
    true
}

/// libyaml's printable set (with unicode output on, as go-yaml sets it). Tab is not printable.
fn is_printable(c: char) -> bool {
    matches!(c as u32,
        0x0A | 0x20..=0x7E | 0x85 | 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
        && c != '\u{FEFF}'
}

/// A double-quoted scalar with YAML escapes.
fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\x0B' => out.push_str("\\v"),
            '\x0C' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\x1B' => out.push_str("\\e"),
            '\u{85}' => out.push_str("\\N"),
            '\u{A0}' => out.push_str("\\_"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if is_printable(c) => out.push(c),
            c if (c as u32) <= 0xFF => out.push_str(&format!("\\x{:02X}", c as u32)),
            c if (c as u32) <= 0xFFFF => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// go-yaml v2's map key order (`sorter.go keyList.Less`) for string keys: letters compare by
/// code point, a non-letter sorts before a letter, and digit runs compare by numeric value.
pub fn natural_key_order(a: &str, b: &str) -> Ordering {
    let (ar, br): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    for i in 0..ar.len().min(br.len()) {
        if ar[i] == br[i] {
            continue;
        }
        let (al, bl) = (ar[i].is_alphabetic(), br[i].is_alphabetic());
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        return compare_digit_runs(&ar, &br, i);
    }
    ar.len().cmp(&br.len())
}

/// The digit-run part of go-yaml's key order, at the first differing position `i`.
fn compare_digit_runs(ar: &[char], br: &[char], i: usize) -> Ordering {
    // go-yaml seeds both numbers with 1 when the differing digit is a '0' inside a run that
    // already had a non-zero digit; we do the same so that our order is go-yaml's, quirks included.
    let mut seed = 0i64;
    if ar[i] == '0' || br[i] == '0' {
        let preceding = ar[..i].iter().rev().take_while(|c| c.is_ascii_digit());
        if preceding.clone().any(|c| *c != '0') {
            seed = 1;
        }
    }
    let run = |chars: &[char]| {
        let mut n = seed;
        let mut end = i;
        while end < chars.len() && chars[end].is_ascii_digit() {
            n = n
                .wrapping_mul(10)
                .wrapping_add(chars[end] as i64 - '0' as i64);
            end += 1;
        }
        (n, end)
    };
    let ((an, ai), (bn, bi)) = (run(ar), run(br));
    an.cmp(&bn).then(ai.cmp(&bi)).then(ar[i].cmp(&br[i]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_puts_underscore_before_letters_unlike_bytewise_sort() {
        let mut keys = vec![
            "ISTIO_METAJSON_LABELS",
            "ISTIO_META_WORKLOAD_NAME",
            "POD_NAMESPACE",
            "CANONICAL_SERVICE",
            "CANONICAL_REVISION",
            "ISTIO_META_CLUSTER_ID",
        ];
        keys.sort_by(|a, b| natural_key_order(a, b));
        assert_eq!(
            keys,
            [
                "CANONICAL_REVISION",
                "CANONICAL_SERVICE",
                "ISTIO_META_CLUSTER_ID",
                "ISTIO_META_WORKLOAD_NAME",
                "ISTIO_METAJSON_LABELS",
                "POD_NAMESPACE"
            ]
        );
    }

    #[test]
    fn key_order_compares_digit_runs_numerically() {
        let mut keys = vec!["a10", "a9", "a1", "b", "a"];
        keys.sort_by(|a, b| natural_key_order(a, b));
        assert_eq!(keys, ["a", "a1", "a9", "a10", "b"]);
    }

    #[test]
    fn strings_are_quoted_the_way_go_yaml_quotes_them() {
        assert_eq!(scalar_string("latest"), "latest");
        assert_eq!(scalar_string("true"), "\"true\"");
        assert_eq!(scalar_string(""), "\"\"");
        assert_eq!(scalar_string("8080"), "\"8080\"");
        assert_eq!(scalar_string("yes"), "\"yes\"");
        assert_eq!(scalar_string("1:20"), "\"1:20\"");
        assert_eq!(
            scalar_string("istiod-rev-1.istio-system.svc:15012"),
            "istiod-rev-1.istio-system.svc:15012"
        );
        assert_eq!(scalar_string("10.10.10.10"), "10.10.10.10");
        assert_eq!(scalar_string("fd00:10:96::1"), "fd00:10:96::1");
        assert_eq!(scalar_string(r#"{"a":"b"}"#), r#"'{"a":"b"}'"#);
        assert_eq!(scalar_string("a: b"), "'a: b'");
        assert_eq!(scalar_string("it's # x"), "'it''s # x'");
        assert_eq!(scalar_string("-c"), "-c");
        assert_eq!(scalar_string("- c"), "'- c'");
        assert_eq!(scalar_string("a\nb"), "\"a\\nb\"");
        assert_eq!(scalar_string("tab\there"), "\"tab\\there\"");
    }

    #[test]
    fn block_layout_matches_go_yaml_v2() {
        let v = json!({
            "defaultConfig": {
                "readinessProbe": {"httpGet": {"port": 8080, "httpHeaders": [{"name": "a", "value": "b"}]},
                                    "exec": {"command": ["/bin/sh", "-c"]}},
                "proxyMetadata": {"B": "x", "A": ""},
                "empty": {},
                "none": []
            }
        });
        let expected = "\
defaultConfig:
  empty: {}
  none: []
  proxyMetadata:
    A: \"\"
    B: x
  readinessProbe:
    exec:
      command:
      - /bin/sh
      - -c
    httpGet:
      httpHeaders:
      - name: a
        value: b
      port: 8080
";
        assert_eq!(to_string(&v), expected);
    }

    #[test]
    fn everything_we_write_reads_back_as_the_same_value() {
        let tricky = [
            "",
            "true",
            "no",
            "8080",
            "0x1F",
            "1e3",
            ".5",
            "1:20",
            "2026-01-01",
            "a: b",
            "#x",
            "x #y",
            "{a}",
            "[a]",
            "- a",
            "?",
            "'q'",
            "\"d\"",
            "a\nb\n",
            " lead",
            "trail ",
            "tab\t",
            "é ü",
            "null",
            "~",
            "---",
            "@x",
            "`x`",
            "a,b",
            "<<",
        ];
        for s in tricky {
            let doc = to_string(&json!({ "k": s, s: "v" }));
            let back: serde_json::Value =
                serde_yaml_ng::from_str(&doc).unwrap_or_else(|e| panic!("{doc}: {e}"));
            assert_eq!(back["k"], json!(s), "value {s:?} in {doc}");
            assert_eq!(back[s], json!("v"), "key {s:?} in {doc}");
        }
    }
}
