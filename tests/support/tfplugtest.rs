//! A test-only provider for tfplug's end-to-end tests: `tfplugtest_blob` stores objects as JSON
//! files in `$TFPLUGTEST_STORE`, so the real Terraform binary can drive every RPC without
//! Kubernetes. Built only with `--features tfplug-test-provider`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use terraform_provider_istio::tfplug::{
    self, AttributePath, Ctx, Diagnostics, EphemeralResource, Number, Opened, Plan, Provider,
    Resource, Schema, UnknownAs, Value, decode, encode,
};

const SOURCE: &str = "registry.terraform.io/tfplug/tfplugtest";

/// Test provider for the tfplug protocol layer.
#[derive(Serialize, Deserialize, JsonSchema)]
struct ProviderModel {
    /// Unused; present so the provider block has an attribute.
    prefix: Option<String>,
}

/// A port rule.
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
struct Rule {
    /// Port number.
    port: i64,
    /// Protocol name.
    protocol: Option<String>,
}

/// A blob stored as a JSON file.
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
struct Blob {
    /// Name; changing it replaces the blob.
    #[schemars(extend("x-tf" = { "requires_replace": true }))]
    name: String,
    /// Content (may be large).
    content: Option<String>,
    /// Labels.
    labels: Option<BTreeMap<String, String>>,
    /// A float attribute.
    ratio: Option<f64>,
    /// A number too big for any machine type.
    big: Option<Number>,
    /// Identifier (`blob-<name>`).
    #[schemars(extend("x-tf" = { "computed": true }))]
    id: Option<String>,
    /// Hash of content and labels.
    #[schemars(extend("x-tf" = { "computed": true }))]
    fingerprint: Option<String>,
    /// Port rules.
    #[schemars(extend("x-tf" = { "block": "list", "max_items": 8 }))]
    #[serde(default)]
    rule: Vec<Rule>,
    /// A secret the blob uses but never stores (Terraform 1.11+ / OpenTofu 1.11+).
    #[schemars(extend("x-tf" = { "write_only": true, "sensitive": true }))]
    secret_wo: Option<String>,
    /// Hash of `secret_wo` as last applied.
    #[schemars(extend("x-tf" = { "computed": true }))]
    secret_hash: Option<String>,
}

/// A secret that exists for one Terraform run only.
#[derive(Serialize, Deserialize, JsonSchema)]
struct Secret {
    /// Seed of the secret.
    seed: String,
    /// The secret.
    #[schemars(extend("x-tf" = { "computed": true, "sensitive": true }))]
    value: Option<String>,
}

struct SecretEphemeral;

#[async_trait]
impl EphemeralResource for SecretEphemeral {
    fn type_name(&self) -> &'static str {
        "tfplugtest_secret"
    }

    fn schema(&self) -> Schema {
        Schema::from_model::<Secret>(0)
    }

    async fn open(&self, _ctx: &Ctx, config: Value, diags: &mut Diagnostics) -> Option<Opened> {
        let mut secret: Secret = decode(&config, UnknownAs::Error, diags)?;
        secret.value = Some(format!("eph-secret-{}", secret.seed));
        Some(Opened {
            result: encode(&secret, &self.schema(), diags)?,
            renew_at: None,
            private: secret.seed.into_bytes(),
        })
    }

    /// Leaves a marker so tests see that Terraform closed it.
    async fn close(&self, _ctx: &Ctx, private: Vec<u8>, diags: &mut Diagnostics) {
        let seed = String::from_utf8_lossy(&private);
        if let Err(e) = std::fs::write(store_dir().join(format!("closed-{seed}")), b"") {
            diags.root_error("Cannot record close", e.to_string());
        }
    }
}

/// The write-only secret from the configuration, hashed (never the value itself).
fn secret_hash(ctx: &Ctx) -> Option<String> {
    let secret = ctx.config()?.get_attr("secret_wo")?.as_str()?;
    Some(
        Sha256::digest(secret.as_bytes())
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

/// A value of every shape, echoed into state.
#[derive(Serialize, Deserialize, JsonSchema)]
#[allow(dead_code)] // only its schema is used
struct Shape {
    /// Name; changing it replaces the shape.
    #[schemars(extend("x-tf" = { "requires_replace": true }))]
    name: String,
    /// `shape-<name>`.
    #[schemars(extend("x-tf" = { "computed": true }))]
    id: Option<String>,
    /// A note.
    note: Option<String>,
    /// A number of any size or precision.
    amount: Option<Number>,
    /// Tags.
    #[schemars(extend("x-tf" = { "set": true }))]
    tags: Option<Vec<String>>,
    /// Labels.
    labels: Option<BTreeMap<String, String>>,
    /// Any value.
    anything: Option<serde_json::Value>,
    /// A port rule.
    #[schemars(extend("x-tf" = { "block": "list" }))]
    #[serde(default)]
    rule: Vec<ShapeRule>,
    /// A backend.
    #[schemars(extend("x-tf" = { "block": "set" }))]
    #[serde(default)]
    backend: Vec<Backend>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[allow(dead_code)] // only its schema is used
struct ShapeRule {
    /// Port number.
    port: Number,
    /// Protocol name.
    protocol: Option<String>,
    /// `uid-<port>`.
    #[schemars(extend("x-tf" = { "computed": true }))]
    uid: Option<String>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[allow(dead_code)] // only its schema is used
struct Backend {
    /// Host name.
    host: String,
    /// Weight.
    weight: Option<Number>,
}

/// Nested attributes (`nested_type`, Terraform 1.3+).
#[derive(Serialize, Deserialize, JsonSchema)]
#[allow(dead_code)] // only its schema is used
struct Nested {
    /// Name; changing it replaces the object.
    #[schemars(extend("x-tf" = { "requires_replace": true }))]
    name: String,
    /// Endpoints.
    #[schemars(extend("x-tf" = { "nested": "list" }))]
    endpoints: Option<Vec<Endpoint>>,
    /// The primary endpoint.
    #[schemars(extend("x-tf" = { "nested": "single" }))]
    primary: Option<Endpoint>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[allow(dead_code)] // only its schema is used
struct Endpoint {
    /// Host name.
    host: String,
    /// Port number.
    port: Option<Number>,
}

/// `tfplugtest_nested`: echoes its configuration; offered only with `CONFORMANCE_NESTED=1`
/// because Terraform 1.0.3 cannot load a schema with nested attributes.
struct NestedResource;

#[async_trait]
impl Resource for NestedResource {
    fn type_name(&self) -> &'static str {
        "tfplugtest_nested"
    }

    fn schema(&self) -> Schema {
        Schema::from_model::<Nested>(0)
    }

    async fn create(&self, _ctx: &Ctx, planned: Value, _diags: &mut Diagnostics) -> Option<Value> {
        Some(planned)
    }

    async fn read(&self, _ctx: &Ctx, state: Value, _diags: &mut Diagnostics) -> Option<Value> {
        Some(state)
    }

    async fn update(
        &self,
        _ctx: &Ctx,
        _prior: Value,
        planned: Value,
        _diags: &mut Diagnostics,
    ) -> Option<Value> {
        Some(planned)
    }

    async fn delete(&self, _ctx: &Ctx, _prior: Value, _diags: &mut Diagnostics) {}
}

/// `tfplugtest_shape`: the conformance twin of bench/peer's `peer_shape` (tests/conformance.rs).
/// Stores nothing; the state is the plan with id and the rule uids filled in.
struct ShapeResource;

fn fill_computed(mut planned: Value) -> Value {
    let name = planned
        .get_attr("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    planned.set_attr("id", Value::string(format!("shape-{name}")));
    if let Some(Value::List(rules)) = planned.get_attr_mut("rule") {
        for rule in rules.iter_mut() {
            if rule.get_attr("uid") == Some(&Value::Unknown) {
                let port = rule
                    .get_attr("port")
                    .and_then(Value::as_number)
                    .map(|n| n.canonical());
                rule.set_attr(
                    "uid",
                    Value::string(format!("uid-{}", port.unwrap_or_default())),
                );
            }
        }
    }
    planned
}

#[async_trait]
impl Resource for ShapeResource {
    fn type_name(&self) -> &'static str {
        "tfplugtest_shape"
    }

    fn schema(&self) -> Schema {
        Schema::from_model::<Shape>(0)
    }

    async fn create(&self, _ctx: &Ctx, planned: Value, _diags: &mut Diagnostics) -> Option<Value> {
        Some(fill_computed(planned))
    }

    async fn read(&self, _ctx: &Ctx, state: Value, _diags: &mut Diagnostics) -> Option<Value> {
        Some(state)
    }

    async fn update(
        &self,
        _ctx: &Ctx,
        _prior: Value,
        planned: Value,
        _diags: &mut Diagnostics,
    ) -> Option<Value> {
        Some(fill_computed(planned))
    }

    async fn delete(&self, _ctx: &Ctx, _prior: Value, _diags: &mut Diagnostics) {}
}

struct TestProvider;

#[async_trait]
impl Provider for TestProvider {
    fn schema(&self) -> Schema {
        Schema::from_model::<ProviderModel>(0)
    }

    async fn configure(
        &self,
        _ctx: &Ctx,
        _terraform_version: &str,
        _config: Value,
        _diags: &mut Diagnostics,
    ) {
    }

    fn resources(&self) -> Vec<Arc<dyn Resource>> {
        let mut resources: Vec<Arc<dyn Resource>> =
            vec![Arc::new(BlobResource), Arc::new(ShapeResource)];
        if std::env::var_os("CONFORMANCE_NESTED").is_some() {
            resources.push(Arc::new(NestedResource));
        }
        resources
    }

    fn ephemeral_resources(&self) -> Vec<Arc<dyn EphemeralResource>> {
        vec![Arc::new(SecretEphemeral)]
    }
}

struct BlobResource;

fn store_dir() -> PathBuf {
    PathBuf::from(std::env::var("TFPLUGTEST_STORE").expect("TFPLUGTEST_STORE must be set"))
}

fn file_of(id: &str) -> PathBuf {
    store_dir().join(format!("{id}.json"))
}

fn fingerprint(blob: &Blob) -> String {
    let mut hasher = Sha256::new();
    hasher.update(blob.content.as_deref().unwrap_or_default());
    hasher.update(serde_json::to_vec(&blob.labels).unwrap_or_default());
    hasher
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl BlobResource {
    fn save(&self, mut blob: Blob, diags: &mut Diagnostics) -> Option<Value> {
        let id = format!("blob-{}", blob.name);
        blob.fingerprint = Some(fingerprint(&blob));
        blob.id = Some(id.clone());
        let json = serde_json::to_vec(&blob).expect("blob serialises");
        if let Err(e) = std::fs::write(file_of(&id), json) {
            diags.root_error("Cannot store blob", e.to_string());
            return None;
        }
        encode(&blob, &self.schema(), diags)
    }

    fn load(&self, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        let bytes = std::fs::read(file_of(id)).ok()?;
        let json: serde_json::Value = match serde_json::from_slice(&bytes) {
            Ok(json) => json,
            Err(e) => {
                diags.root_error("Corrupt blob file", e.to_string());
                return None;
            }
        };
        let blob: Blob = serde_json::from_value(json).ok()?;
        encode(&blob, &self.schema(), diags)
    }
}

#[async_trait]
impl Resource for BlobResource {
    fn type_name(&self) -> &'static str {
        "tfplugtest_blob"
    }

    fn schema(&self) -> Schema {
        Schema::from_model::<Blob>(0)
    }

    async fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        if let Some(name) = config.get_attr("name").and_then(Value::as_str) {
            if name == "panic-please" {
                panic!("asked to panic by the configuration");
            }
            if name == "crash-please" {
                // A panic outside any RPC handler: a real crash of the plugin.
                let _ = std::thread::spawn(|| panic!("deliberate crash outside any RPC")).join();
                std::process::exit(2);
            }
            if name.contains(' ') {
                diags.error(
                    "Invalid name",
                    format!("{name:?} contains a space."),
                    AttributePath::new("name"),
                );
            }
        }
        if let Some(Value::Map(labels)) = config.get_attr("labels") {
            for key in labels
                .keys()
                .filter(|k| !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            {
                diags.error(
                    "Invalid label key",
                    format!("{key:?} must be alphanumeric."),
                    AttributePath::new("labels").key(key.clone()),
                );
            }
        }
    }

    async fn plan(&self, _ctx: &Ctx, plan: &mut Plan, _diags: &mut Diagnostics) {
        let Some(prior) = &plan.prior else { return };
        let changed = |attr: &str| prior.get_attr(attr) != plan.planned.get_attr(attr);
        if changed("content") || changed("labels") {
            plan.set_unknown(&AttributePath::new("fingerprint"));
        }
    }

    async fn create(&self, ctx: &Ctx, planned: Value, diags: &mut Diagnostics) -> Option<Value> {
        let mut blob: Blob = decode(&planned, UnknownAs::Null, diags)?;
        blob.secret_hash = secret_hash(ctx);
        let delay_ms: u64 = std::env::var("TFPLUGTEST_CREATE_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if delay_ms > 0 {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(delay_ms)) => {}
                _ = ctx.cancelled.cancelled() => tracing::info!("create interrupted by StopProvider; saving anyway"),
            }
        }
        self.save(blob, diags)
    }

    async fn read(&self, _ctx: &Ctx, state: Value, diags: &mut Diagnostics) -> Option<Value> {
        let id = state.get_attr("id").and_then(Value::as_str)?.to_string();
        self.load(&id, diags)
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _prior: Value,
        planned: Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let mut blob: Blob = decode(&planned, UnknownAs::Null, diags)?;
        blob.secret_hash = secret_hash(ctx);
        self.save(blob, diags)
    }

    async fn delete(&self, _ctx: &Ctx, prior: Value, diags: &mut Diagnostics) {
        if let Some(id) = prior.get_attr("id").and_then(Value::as_str)
            && let Err(e) = std::fs::remove_file(file_of(id))
            && e.kind() != std::io::ErrorKind::NotFound
        {
            diags.root_error("Cannot delete blob", e.to_string());
        }
    }

    async fn import(&self, _ctx: &Ctx, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        let found = self.load(id, diags);
        if found.is_none() && !diags.has_errors() {
            diags.root_error("Cannot import", format!("No blob with id {id:?}."));
        }
        found
    }
}

fn main() {
    let mode = match std::env::args().nth(1).as_deref() {
        Some("--debug") => tfplug::Mode::Debug,
        _ => tfplug::Mode::Plugin,
    };
    tfplug::run(SOURCE, Arc::new(TestProvider), mode);
}
