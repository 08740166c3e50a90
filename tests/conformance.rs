//! Conformance with terraform-plugin-framework: `tfplugtest_shape` (tfplug) and bench/peer's
//! `peer_shape` (framework) have the same schema; a corpus of configurations goes through
//! both with the real Terraform 1.0.3, and every `terraform show -json` of plan and state must
//! be identical once the type and provider names are aligned. The corpus covers nested list
//! and set blocks, sets, maps, null vs empty, big and fractional numbers, dynamic values,
//! unknowns at every depth, computed values in new nested items, and replacement.
//!
//! Needs `--features tfplug-test-provider`, Go (builds bench/peer) and Terraform 1.0.3
//! (`TFPI_TERRAFORM_1_0_3`), and Terraform 1.13.3 for nested attributes (`TFPI_TERRAFORM_1_13_3`).
#![cfg(feature = "tfplug-test-provider")]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;

const OURS_BIN: &str = env!("CARGO_BIN_EXE_terraform-provider-tfplugtest");

fn cli(var: &str) -> PathBuf {
    let path = PathBuf::from(std::env::var_os(var).unwrap_or_else(|| {
        panic!("{var} is not set: source tools.env (`make setup` builds the CLI)")
    }));
    assert!(
        path.is_file(),
        "{} missing: run `make setup`",
        path.display()
    );
    path
}

/// Builds bench/peer with Go (its build cache keeps later runs fast).
fn build_peer(out: &Path) -> PathBuf {
    let binary = out.join("terraform-provider-peer");
    let status = Command::new("go")
        .args(["build", "-p", "2", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/peer"))
        .status()
        .expect("go is needed to build bench/peer");
    assert!(status.success(), "go build of bench/peer failed");
    binary
}

/// One provider's working directory.
struct Side {
    terraform: PathBuf,
    /// `CONFORMANCE_NESTED=1` for the providers (nested attributes need Terraform 1.3+).
    nested: bool,
    dir: PathBuf,
    plugins: PathBuf,
    provider: &'static str,
    source: &'static str,
}

impl Side {
    fn new(
        root: &Path,
        terraform: &Path,
        nested: bool,
        (provider, source): (&'static str, &'static str),
        binary: &Path,
    ) -> Side {
        let dir = root.join(provider);
        let plugins = root.join(format!("plugins-{provider}"));
        let install = plugins.join(format!("registry.terraform.io/{source}/0.1.0/linux_amd64"));
        std::fs::create_dir_all(&install).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(
            binary,
            install.join(format!("terraform-provider-{provider}_v0.1.0")),
        )
        .unwrap();
        Side {
            terraform: terraform.to_path_buf(),
            nested,
            dir,
            plugins,
            provider,
            source,
        }
    }

    fn terraform(&self, args: &[&str]) -> String {
        let mut command = Command::new(&self.terraform);
        if self.nested {
            command.env("CONFORMANCE_NESTED", "1");
        }
        let output = command
            .args(args)
            .current_dir(&self.dir)
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .env_remove("TF_LOG")
            .output()
            .expect("terraform runs");
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(
            output.status.success(),
            "{} terraform {args:?}:\n{text}\n{}",
            self.provider,
            String::from_utf8_lossy(&output.stderr)
        );
        text
    }

    /// Writes the step's configuration with this provider's names, plans, applies; returns
    /// the plan and the state as `terraform show -json` prints them.
    fn step(&self, body: &str) -> (Json, Json) {
        let body = body
            .replace("SHAPE", &format!("{}_shape", self.provider))
            .replace("NESTED", &format!("{}_nested", self.provider));
        let config = format!(
            "terraform {{\n  required_providers {{\n    {p} = {{ source = \"{s}\" }}\n  }}\n}}\n{body}",
            p = self.provider,
            s = self.source,
        );
        std::fs::write(self.dir.join("main.tf"), config).unwrap();
        if !self.dir.join(".terraform").exists() {
            let plugin_dir = format!("-plugin-dir={}", self.plugins.display());
            self.terraform(&["init", "-input=false", &plugin_dir]);
        }
        self.terraform(&["plan", "-input=false", "-out=plan.bin"]);
        let plan = self.terraform(&["show", "-json", "plan.bin"]);
        self.terraform(&["apply", "-input=false", "plan.bin"]);
        let state = self.terraform(&["show", "-json"]);
        (self.normalised(&plan), self.normalised(&state))
    }

    /// The parts that depend on the provider, with its names replaced by neutral ones.
    fn normalised(&self, show: &str) -> Json {
        let text = show
            .replace(&format!("{}_shape", self.provider), "SHAPE")
            .replace(&format!("{}_nested", self.provider), "NESTED")
            .replace(
                &format!("registry.terraform.io/{}", self.source),
                "PROVIDER",
            );
        let json: Json = serde_json::from_str(&text).unwrap();
        let pick = |keys: &[&str]| {
            Json::Object(
                keys.iter()
                    .filter_map(|k| json.get(*k).map(|v| (k.to_string(), v.clone())))
                    .collect(),
            )
        };
        pick(&[
            "planned_values",
            "resource_changes",
            "values",
            "prior_state",
        ])
    }

    /// The `resource_schemas` entry of `<provider>_<kind>` (needs an initialised directory).
    fn schema_of(&self, kind: &str) -> Json {
        let text = self.terraform(&["providers", "schema", "-json"]);
        let mut schema: Json = serde_json::from_str(&text).unwrap();
        let key = format!("registry.terraform.io/{}", self.source);
        let resource = format!("{}_{kind}", self.provider);
        schema["provider_schemas"][&key]["resource_schemas"][&resource].take()
    }
}

/// Runs `corpus` through both providers with `terraform`; the schemas of `<provider>_<kind>`
/// must be equal too.
fn compare(terraform: &Path, nested: bool, kind: &str, corpus: &[(&str, &str)]) {
    let root = tempfile::tempdir().unwrap();
    let peer = build_peer(root.path());
    let ours = Side::new(
        root.path(),
        terraform,
        nested,
        ("tfplugtest", "tfplug/tfplugtest"),
        Path::new(OURS_BIN),
    );
    let theirs = Side::new(
        root.path(),
        terraform,
        nested,
        ("peer", "bench/peer"),
        &peer,
    );
    for (step, (what, body)) in corpus.iter().enumerate() {
        let (our_plan, our_state) = ours.step(body);
        let (peer_plan, peer_state) = theirs.step(body);
        if step == 0 {
            let (our_schema, peer_schema) = (ours.schema_of(kind), theirs.schema_of(kind));
            assert!(!our_schema.is_null(), "no {kind} schema");
            assert_eq!(our_schema, peer_schema, "schemas differ");
        }
        assert_eq!(
            our_plan, peer_plan,
            "{what}: plans differ\nours: {our_plan:#}\npeer: {peer_plan:#}"
        );
        assert_eq!(
            our_state, peer_state,
            "{what}: states differ\nours: {our_state:#}\npeer: {peer_state:#}"
        );
    }
}

const CORPUS: &[(&str, &str)] = &[
    (
        "create: every shape, big and fractional numbers, unknowns at every depth",
        r#"
resource "SHAPE" "a" {
  name     = "alpha"
  amount   = 123456789012345678901234567890
  tags     = ["x", "y"]
  labels   = { k = "v" }
  anything = { list = [1, 2.5], nested = { deep = true } }
  rule {
    port = 80
  }
  rule {
    port     = 443
    protocol = "tcp"
  }
  backend {
    host = "h1"
  }
  backend {
    host   = "h2"
    weight = 0.1
  }
}

resource "SHAPE" "b" {
  name     = "beta"
  note     = SHAPE.a.id
  labels   = { parent = SHAPE.a.id }
  tags     = [SHAPE.a.id]
  anything = { from = SHAPE.a.id }
  rule {
    port     = 80
    protocol = SHAPE.a.rule[0].uid
  }
  backend {
    host = SHAPE.a.id
  }
}
"#,
    ),
    (
        "update: a new nested item, fractional number, empty vs null, dynamic changes type",
        r#"
resource "SHAPE" "a" {
  name     = "alpha"
  amount   = 0.1
  labels   = {}
  anything = "now a string"
  note     = "changed"
  rule {
    port = 80
  }
  rule {
    port     = 443
    protocol = "tcp"
  }
  rule {
    port = 8080
  }
  backend {
    host   = "h2"
    weight = 0.1
  }
}

resource "SHAPE" "b" {
  name = "beta"
  note = SHAPE.a.id
  tags = []
}
"#,
    ),
    (
        "replacement: the name changes, its dependant sees unknowns again",
        r#"
resource "SHAPE" "a" {
  name   = "gamma"
  amount = -9007199254740993
  rule {
    port = 80
  }
}

resource "SHAPE" "b" {
  name = "beta"
  note = SHAPE.a.id
  tags = []
}
"#,
    ),
];

#[test]
fn plans_and_states_match_terraform_plugin_framework() {
    compare(&cli("TFPI_TERRAFORM_1_0_3"), false, "shape", CORPUS);
}

const NESTED_CORPUS: &[(&str, &str)] = &[
    (
        "create: nested attributes, unknown inside them",
        r#"
resource "NESTED" "a" {
  name      = "alpha"
  endpoints = [{ host = "h1", port = 80 }, { host = "h2" }]
  primary   = { host = "p" }
}

resource "NESTED" "b" {
  name      = "beta"
  endpoints = [{ host = NESTED.a.endpoints[0].host, port = 8080 }]
  primary   = { host = NESTED.a.name, port = 0.5 }
}
"#,
    ),
    (
        "update: an item added, empty list, null object",
        r#"
resource "NESTED" "a" {
  name      = "alpha"
  endpoints = [{ host = "h1", port = 80 }, { host = "h2" }, { host = "h3", port = 123456789012345678901234567890 }]
}

resource "NESTED" "b" {
  name      = "beta"
  endpoints = []
}
"#,
    ),
];

/// Nested attributes (`nested_type`) need Terraform 1.3+: checked with Terraform 1.13.3, the
/// newest Terraform `make test` builds (1.5.7 is built only for `make test-matrix` and the
/// benchmarks, so a fresh machine's `make test` has no 1.5.7).
#[test]
fn nested_attributes_match_terraform_plugin_framework_on_terraform_1_13_3() {
    compare(&cli("TFPI_TERRAFORM_1_13_3"), true, "nested", NESTED_CORPUS);
}
