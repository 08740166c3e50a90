//! Ephemeral resource `istio_vm_bootstrap`: a VM's five bootstrap files with a fresh token,
//! for one Terraform run, never in plan or state (Terraform ≥ 1.10, OpenTofu ≥ 1.11). The token
//! and the files come from the registration's own code (`vm_registration::mint_bootstrap`):
//! the token is bound to the registration's Secret, so destroying the registration revokes it.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::validate_config;
use super::error::OrReport;
use super::vm_registration::{
    BundleModel, BundleSettingsModel, VmRegistrationModel, check_settings, group_of_registration,
    mint_bootstrap,
};
use crate::provider_data::ProviderHandle;
use crate::tfplug::{
    AttributePath, Ctx, Diagnostics, EphemeralResource, Opened, Schema, UnknownAs, Value, decode,
    encode,
};

const FAILED: &str = "Cannot open the VM bootstrap";

/// A VM's bootstrap for one Terraform run: a new bootstrap token for an existing
/// `istio_vm_registration` and the five files (`cluster.env`, `mesh.yaml`, `hosts`,
/// `root-cert.pem`, `istio-token`) rendered with it exactly as the registration renders them.
/// Nothing of it is stored in plan or state: feed it to write-only arguments of other
/// providers (e.g. a secret store's `*_wo` argument) or to provisioners.
///
/// Needs Terraform ≥ 1.10 or OpenTofu ≥ 1.11 (write-only arguments need ≥ 1.11); older CLIs
/// do not know ephemeral resources, and the rest of the provider works on them as before (see
/// the guide `vm-credentials`). Each run that needs the value opens it again and issues a new
/// token; the token is bound to the registration's Secret, so destroying the registration
/// revokes every token issued here.
///
/// Set the bundle settings (`network`, `labels`, `istiod_address`, …) to the same values as on
/// the registration (e.g. `network = istio_vm_registration.vm.network`): they shape the files.
/// The mode and a manual entry's address are read from the cluster. Use the registration with
/// `issue_token = false` so that no token is kept in its state either.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[schemars(transform = described_as_the_registrations)]
pub struct VmBootstrapModel {
    /// The `id` of the `istio_vm_registration` (`<namespace>/<workload-group>/<registration-id>`).
    #[serde(deserialize_with = "crate::tfplug::null_as_default")]
    pub registration: String,
    #[serde(flatten)]
    pub settings: BundleSettingsModel,
    /// As the registration's `cluster_id` (default: chosen as istioctl does).
    pub cluster_id: Option<String>,
    /// Lifetime of the token issued here, e.g. `1h` (default). At least `10m`.
    pub token_duration: Option<String>,
    #[serde(flatten)]
    pub bundle: BundleModel,
    /// SHA-256 over the five files.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub bundle_sha256: Option<String>,
    /// The five files by file name (`cluster.env`, `hosts`, `istio-token`, `mesh.yaml`,
    /// `root-cert.pem`), e.g. for a cloud-init `write_files` list.
    #[schemars(extend("x-tf" = {"computed": true, "sensitive": true}))]
    pub files: Option<BTreeMap<String, String>>,
}

impl VmBootstrapModel {
    /// The registration's settings this bootstrap is rendered from.
    fn registration_settings(&self) -> VmRegistrationModel {
        VmRegistrationModel {
            id: Some(self.registration.clone()),
            workload_group: group_of_registration(&self.registration).unwrap_or_default(),
            settings: self.settings.clone(),
            cluster_id: self.cluster_id.clone(),
            token_duration: self.token_duration.clone(),
            ..Default::default()
        }
    }
}

/// The settings are the registration's ([`BundleSettingsModel`]): each says so instead of
/// repeating the registration's documentation.
fn described_as_the_registrations(schema: &mut schemars::Schema) {
    let settings = schemars::schema_for!(BundleSettingsModel);
    let names = settings
        .get("properties")
        .and_then(serde_json::Value::as_object)
        .map(|properties| properties.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    let Some(properties) = schema
        .get_mut("properties")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return;
    };
    for name in names {
        let default = if name == "capture_dns" {
            " (default true)"
        } else {
            ""
        };
        if let Some(property) = properties
            .get_mut(&name)
            .and_then(serde_json::Value::as_object_mut)
        {
            let description = format!("As the registration's `{name}`{default}.");
            property.insert("description".into(), description.into());
        }
    }
}

pub struct VmBootstrapEphemeral {
    handle: Arc<ProviderHandle>,
}

impl VmBootstrapEphemeral {
    pub fn new(handle: Arc<ProviderHandle>) -> Self {
        VmBootstrapEphemeral { handle }
    }
}

#[async_trait]
impl EphemeralResource for VmBootstrapEphemeral {
    fn type_name(&self) -> &'static str {
        "istio_vm_bootstrap"
    }

    fn schema(&self) -> Schema {
        Schema::from_model::<VmBootstrapModel>(0)
    }

    async fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        validate_config::<VmBootstrapModel>(config, diags, |model, diags| {
            check(model, config, diags)
        });
    }

    async fn open(&self, _ctx: &Ctx, config: Value, diags: &mut Diagnostics) -> Option<Opened> {
        let mut model = decode::<VmBootstrapModel>(&config, UnknownAs::Null, diags)?;
        check(&model, &config, diags);
        if diags.has_errors() {
            return None;
        }
        let configured = self.handle.configured(diags).await?;
        let mut settings = model.registration_settings();
        let bundle = mint_bootstrap(&configured, &mut settings)
            .await
            .map_err(|error| match error.attribute {
                // The registration's own attributes are not in this schema.
                Some("workload_group") | Some("mode") | None => error.on("registration"),
                Some(_) => error,
            })
            .or_report(FAILED, diags)?;
        model.bundle.record_files(&bundle);
        model.bundle.istio_token = Some(bundle.istio_token.clone());
        model.bundle.token_expires_at = settings.bundle.token_expires_at;
        model.bundle_sha256 = Some(bundle.sha256.clone());
        model.files = Some(
            bundle
                .files()
                .into_iter()
                .map(|(name, content)| (name.to_string(), content.to_string()))
                .collect(),
        );
        Some(Opened {
            result: encode(&model, &self.schema(), diags)?,
            renew_at: None,
            private: Vec::new(),
        })
    }
}

/// The registration's rules for the settings, and a well-formed registration `id`.
fn check(model: &VmBootstrapModel, config: &Value, diags: &mut Diagnostics) {
    let registration_known = config
        .get_attr("registration")
        .is_some_and(|v| !v.is_null() && v.is_known());
    if registration_known && group_of_registration(&model.registration).is_none() {
        diags.error(
            "Invalid registration",
            format!(
                "{:?} is not the `id` of an istio_vm_registration (<namespace>/<workload-group>/<registration-id>): write registration = istio_vm_registration.<name>.id",
                model.registration
            ),
            AttributePath::new("registration"),
        );
    }
    check_settings(&model.registration_settings(), config, diags);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: serde_json::Value) -> Value {
        let schema = Schema::from_model::<VmBootstrapModel>(0);
        Value::from_json(&json, &schema.value_type()).unwrap()
    }

    fn errors_of(json: serde_json::Value) -> Vec<String> {
        let config = config(json);
        let model = decode::<VmBootstrapModel>(&config, UnknownAs::Null, &mut Diagnostics::new())
            .expect("decodes");
        let mut diags = Diagnostics::new();
        check(&model, &config, &mut diags);
        diags.errors().map(|d| d.summary.clone()).collect()
    }

    #[test]
    fn the_token_and_the_files_are_sensitive_and_computed() {
        let schema = Schema::from_model::<VmBootstrapModel>(0);
        for name in ["istio_token", "files"] {
            let attribute = schema.block.attribute(name).unwrap();
            assert!(
                attribute.sensitive && attribute.computed && !attribute.optional,
                "{name}"
            );
        }
        assert!(schema.block.attribute("registration").unwrap().required);
        assert!(!schema.block.attribute("root_cert").unwrap().sensitive);
    }

    #[test]
    fn the_registration_must_be_a_registration_id() {
        assert_eq!(
            errors_of(serde_json::json!({"registration": "shop/product-vm"})),
            vec!["Invalid registration"]
        );
        assert!(
            errors_of(serde_json::json!({"registration": "shop/product-vm/0b6c-uid"})).is_empty()
        );
    }

    #[test]
    fn settings_follow_the_registrations_rules() {
        let errors = errors_of(serde_json::json!({
            "registration": "shop/product-vm/uid",
            "token_duration": "5m",
            "internal_ip": "10.0.0.1",
            "external_ip": "not-an-ip",
        }));
        for expected in [
            "Invalid token_duration",
            "Invalid IP address",
            "Conflicting attributes",
        ] {
            assert!(
                errors.iter().any(|e| e == expected),
                "{expected} in {errors:?}"
            );
        }
    }

    #[test]
    fn settings_reach_the_registration_model() {
        let model = VmBootstrapModel {
            registration: "shop/product-vm/uid-1".into(),
            settings: BundleSettingsModel {
                network: Some("net-1".into()),
                istiod_address: Some("istiod.example.com:15012".into()),
                ..Default::default()
            },
            token_duration: Some("30m".into()),
            ..Default::default()
        };
        let settings = model.registration_settings();
        assert_eq!(settings.workload_group, "shop/product-vm");
        assert_eq!(settings.id.as_deref(), Some("shop/product-vm/uid-1"));
        assert_eq!(settings.settings.network.as_deref(), Some("net-1"));
        assert_eq!(
            settings.settings.istiod_address.as_deref(),
            Some("istiod.example.com:15012")
        );
        assert_eq!(settings.token_duration.as_deref(), Some("30m"));
        assert_eq!(settings.bundle.istio_token, None);
    }
}
