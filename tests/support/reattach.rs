//! Reads the `TF_REATTACH_PROVIDERS='…'` line a provider started with `--debug` prints, as a
//! developer would copy it from the terminal. Shared by the debug-mode tests of both providers.

use std::io::{BufRead, Lines};

/// The value of the first `TF_REATTACH_PROVIDERS` line, as printed and parsed; the rest of `lines` stays unread, so the
/// caller can keep the provider's stdout open, as a developer's terminal stays open.
pub fn reattach_providers(lines: &mut Lines<impl BufRead>) -> (String, serde_json::Value) {
    let reattach = lines
        .by_ref()
        .map(Result::unwrap)
        .find_map(|line| {
            line.trim()
                .strip_prefix("TF_REATTACH_PROVIDERS='")
                .and_then(|rest| rest.strip_suffix('\''))
                .map(str::to_string)
        })
        .expect("TF_REATTACH_PROVIDERS line");
    let parsed = serde_json::from_str(&reattach).unwrap();
    (reattach, parsed)
}
