//! The committed schema snapshot (`schemas/provider.json`) and reference docs (`docs/`) are what
//! the provider's models generate today, so neither can drift from the code. Regenerate with
//! `cargo run -- --write-schema schemas/ && cargo run -- --write-docs docs/` and commit.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use terraform_provider_istio::generated::{docs_pages, schema_snapshot};

const REGENERATE: &str = "regenerate with `cargo run -- --write-schema schemas/ && cargo run -- --write-docs docs/` and commit";

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn schema_snapshot_matches_the_models() {
    let committed = std::fs::read_to_string(repository().join("schemas/provider.json"))
        .expect("schemas/provider.json");
    assert!(
        committed == schema_snapshot(),
        "schemas/provider.json differs from the provider's models; {REGENERATE}"
    );
}

#[test]
fn docs_match_the_models_page_for_page() {
    let docs = repository().join("docs");
    let mut stale = Vec::new();
    for (path, text) in docs_pages() {
        if std::fs::read_to_string(docs.join(&path)).ok().as_deref() != Some(text.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "docs/ pages differ from the models: {stale:?}; {REGENERATE}"
    );
}

/// `docs/guides/` is the registry's place for hand-written guides; everything else in `docs/`
/// is generated, so a page left behind by a renamed resource is caught.
#[test]
fn docs_holds_only_generated_pages_and_guides() {
    let docs = repository().join("docs");
    let generated: BTreeSet<PathBuf> = docs_pages().into_iter().map(|(path, _)| path).collect();
    let committed: BTreeSet<PathBuf> = files_below(&docs, Path::new(""))
        .into_iter()
        .filter(|path| !path.starts_with("guides"))
        .collect();
    let extra: Vec<_> = committed.difference(&generated).collect();
    assert!(
        extra.is_empty(),
        "docs/ outside docs/guides/ is generated; hand-written pages belong in docs/guides/ or ARCHITECTURE.md, stale pages must go: {extra:?}"
    );
}

fn files_below(root: &Path, relative: &Path) -> BTreeSet<PathBuf> {
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir(root.join(relative)).expect("readable docs/") {
        let entry = entry.expect("directory entry");
        let path = relative.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            files.extend(files_below(root, &path));
        } else {
            files.insert(path);
        }
    }
    files
}
