//! The tfplugin6 `Provider` gRPC service: decodes requests with the schemas, dispatches to the
//! provider/resource traits, and turns every failure (including panics) into diagnostics.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::Error;
use super::codec::{decode_msgpack, encode_msgpack};
use super::diag::Diagnostics;
use super::proto::tfplugin6 as pb;
use super::provider::Provider;
use super::resource::{Ctx, DataSource, Plan, Resource, default_plan};
use super::schema::Schema;
use super::types::Type;
use super::value::Value;

pub(crate) struct ProviderService {
    provider: Arc<dyn Provider>,
    provider_schema: Schema,
    resources: HashMap<String, (Arc<dyn Resource>, Schema)>,
    data_sources: HashMap<String, (Arc<dyn DataSource>, Schema)>,
    /// Fired by StopProvider; handed to operations through `Ctx`.
    stop: CancellationToken,
}

impl ProviderService {
    pub(crate) fn new(provider: Arc<dyn Provider>) -> Self {
        let resources = provider
            .resources()
            .into_iter()
            .map(|r| (r.type_name().to_string(), (r.clone(), r.schema())))
            .collect();
        let data_sources = provider
            .data_sources()
            .into_iter()
            .map(|d| (d.type_name().to_string(), (d.clone(), d.schema())))
            .collect();
        ProviderService {
            provider_schema: provider.schema(),
            provider,
            resources,
            data_sources,
            stop: CancellationToken::new(),
        }
    }

    fn ctx(&self, private: Vec<u8>) -> Ctx {
        Ctx {
            cancelled: self.stop.clone(),
            private,
        }
    }

    fn resource(
        &self,
        type_name: &str,
        diags: &mut Diagnostics,
    ) -> Option<(Arc<dyn Resource>, &Schema)> {
        tracing::Span::current().record("tf_resource_type", type_name);
        match self.resources.get(type_name) {
            Some((resource, schema)) => Some((resource.clone(), schema)),
            None => {
                diags.root_error(
                    "Unknown resource type",
                    format!("This provider has no resource type {type_name:?}."),
                );
                None
            }
        }
    }

    fn data_source(
        &self,
        type_name: &str,
        diags: &mut Diagnostics,
    ) -> Option<(Arc<dyn DataSource>, &Schema)> {
        tracing::Span::current().record("tf_resource_type", type_name);
        match self.data_sources.get(type_name) {
            Some((data_source, schema)) => Some((data_source.clone(), schema)),
            None => {
                diags.root_error(
                    "Unknown data source",
                    format!("This provider has no data source {type_name:?}."),
                );
                None
            }
        }
    }

    fn capabilities() -> pb::ServerCapabilities {
        pb::ServerCapabilities {
            plan_destroy: true,
            get_provider_schema_optional: true,
        }
    }
}

/// Runs one RPC body; a panic becomes an error diagnostic instead of a dead plugin.
async fn guarded<T>(
    rpc: &str,
    body: impl Future<Output = T>,
    on_panic: impl FnOnce(Vec<pb::Diagnostic>) -> T,
) -> T {
    // One span per RPC; the resource lookup records the type, so every line logged while
    // serving it names the RPC and the resource type.
    let span = tracing::debug_span!(
        "rpc",
        tf_rpc = rpc,
        tf_resource_type = tracing::field::Empty
    );
    serve_guarded(rpc, body, on_panic).instrument(span).await
}

async fn serve_guarded<T>(
    rpc: &str,
    body: impl Future<Output = T>,
    on_panic: impl FnOnce(Vec<pb::Diagnostic>) -> T,
) -> T {
    tracing::debug!(rpc, "request");
    match AssertUnwindSafe(body).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            tracing::error!(rpc, "provider panicked: {message}");
            let mut diags = Diagnostics::new();
            diags.root_error(
                "Provider internal error",
                format!("The provider panicked during {rpc}: {message}\n\nThis is a bug in the provider; please report it."),
            );
            on_panic(diags.to_proto())
        }
    }
}

/// Absent or empty values are null; Terraform sends msgpack, JSON only as a fallback.
fn decode_dynamic(value: Option<&pb::DynamicValue>, ty: &Type) -> Result<Value, Error> {
    match value {
        Some(v) if !v.msgpack.is_empty() => decode_msgpack(&v.msgpack, ty),
        Some(v) if !v.json.is_empty() => Value::from_wire_json(&v.json, ty),
        _ => Ok(Value::Null),
    }
}

fn encode_dynamic(value: &Value, ty: &Type, diags: &mut Diagnostics) -> Option<pb::DynamicValue> {
    match encode_msgpack(value, ty) {
        Ok(msgpack) => Some(pb::DynamicValue {
            msgpack,
            json: Vec::new(),
        }),
        Err(e) => {
            diags.from_error(
                "Internal error: the provider produced a value that does not fit its schema",
                &e,
            );
            // Still answer with a well-formed (null) value so Terraform reports the diagnostic.
            encode_msgpack(&Value::Null, ty)
                .ok()
                .map(|msgpack| pb::DynamicValue {
                    msgpack,
                    json: Vec::new(),
                })
        }
    }
}

fn decode_or_report(
    value: Option<&pb::DynamicValue>,
    ty: &Type,
    what: &str,
    diags: &mut Diagnostics,
) -> Option<Value> {
    match decode_dynamic(value, ty) {
        Ok(v) => Some(v),
        Err(e) => {
            diags.from_error(&format!("Invalid {what} from Terraform"), &e);
            None
        }
    }
}

fn missing_result(diags: &mut Diagnostics, operation: &str) {
    if !diags.has_errors() {
        diags.root_error(
            "Internal error",
            format!("{operation} returned no value and no error. This is a bug in the provider."),
        );
    }
}

#[tonic::async_trait]
impl pb::provider_server::Provider for ProviderService {
    async fn get_metadata(
        &self,
        _request: Request<pb::get_metadata::Request>,
    ) -> Result<Response<pb::get_metadata::Response>, Status> {
        let mut resources: Vec<_> = self.resources.keys().cloned().collect();
        resources.sort();
        let mut data_sources: Vec<_> = self.data_sources.keys().cloned().collect();
        data_sources.sort();
        Ok(Response::new(pb::get_metadata::Response {
            server_capabilities: Some(Self::capabilities()),
            diagnostics: Vec::new(),
            data_sources: data_sources
                .into_iter()
                .map(|type_name| pb::get_metadata::DataSourceMetadata { type_name })
                .collect(),
            resources: resources
                .into_iter()
                .map(|type_name| pb::get_metadata::ResourceMetadata { type_name })
                .collect(),
        }))
    }

    async fn get_provider_schema(
        &self,
        _request: Request<pb::get_provider_schema::Request>,
    ) -> Result<Response<pb::get_provider_schema::Response>, Status> {
        tracing::debug!(rpc = "GetProviderSchema", "request");
        Ok(Response::new(pb::get_provider_schema::Response {
            provider: Some(self.provider_schema.to_proto()),
            resource_schemas: self
                .resources
                .iter()
                .map(|(k, (_, s))| (k.clone(), s.to_proto()))
                .collect(),
            data_source_schemas: self
                .data_sources
                .iter()
                .map(|(k, (_, s))| (k.clone(), s.to_proto()))
                .collect(),
            diagnostics: Vec::new(),
            provider_meta: None,
            server_capabilities: Some(Self::capabilities()),
        }))
    }

    async fn validate_provider_config(
        &self,
        request: Request<pb::validate_provider_config::Request>,
    ) -> Result<Response<pb::validate_provider_config::Response>, Status> {
        let request = request.into_inner();
        let body = async {
            let mut diags = Diagnostics::new();
            let ty = self.provider_schema.value_type();
            if let Some(config) = decode_or_report(
                request.config.as_ref(),
                &ty,
                "provider configuration",
                &mut diags,
            ) {
                self.provider.validate(&config, &mut diags).await;
            }
            pb::validate_provider_config::Response {
                diagnostics: diags.to_proto(),
            }
        };
        let response = guarded("ValidateProviderConfig", body, |diagnostics| {
            pb::validate_provider_config::Response { diagnostics }
        })
        .await;
        Ok(Response::new(response))
    }

    async fn validate_resource_config(
        &self,
        request: Request<pb::validate_resource_config::Request>,
    ) -> Result<Response<pb::validate_resource_config::Response>, Status> {
        let request = request.into_inner();
        let body = async {
            let mut diags = Diagnostics::new();
            if let Some((resource, schema)) = self.resource(&request.type_name, &mut diags) {
                let ty = schema.value_type();
                if let Some(config) =
                    decode_or_report(request.config.as_ref(), &ty, "configuration", &mut diags)
                {
                    resource.validate(&config, &mut diags).await;
                }
            }
            pb::validate_resource_config::Response {
                diagnostics: diags.to_proto(),
            }
        };
        let response = guarded("ValidateResourceConfig", body, |diagnostics| {
            pb::validate_resource_config::Response { diagnostics }
        })
        .await;
        Ok(Response::new(response))
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<pb::validate_data_resource_config::Request>,
    ) -> Result<Response<pb::validate_data_resource_config::Response>, Status> {
        let request = request.into_inner();
        let body = async {
            let mut diags = Diagnostics::new();
            if let Some((data_source, schema)) = self.data_source(&request.type_name, &mut diags) {
                let ty = schema.value_type();
                if let Some(config) =
                    decode_or_report(request.config.as_ref(), &ty, "configuration", &mut diags)
                {
                    data_source.validate(&config, &mut diags).await;
                }
            }
            pb::validate_data_resource_config::Response {
                diagnostics: diags.to_proto(),
            }
        };
        let response = guarded("ValidateDataResourceConfig", body, |diagnostics| {
            pb::validate_data_resource_config::Response { diagnostics }
        })
        .await;
        Ok(Response::new(response))
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<pb::upgrade_resource_state::Request>,
    ) -> Result<Response<pb::upgrade_resource_state::Response>, Status> {
        let request = request.into_inner();
        let body = async {
            let mut diags = Diagnostics::new();
            let upgraded_state = self.upgrade(&request, &mut diags).await;
            pb::upgrade_resource_state::Response {
                upgraded_state,
                diagnostics: diags.to_proto(),
            }
        };
        let response = guarded("UpgradeResourceState", body, |diagnostics| {
            pb::upgrade_resource_state::Response {
                upgraded_state: None,
                diagnostics,
            }
        })
        .await;
        Ok(Response::new(response))
    }

    async fn configure_provider(
        &self,
        request: Request<pb::configure_provider::Request>,
    ) -> Result<Response<pb::configure_provider::Response>, Status> {
        let request = request.into_inner();
        let body = async {
            let mut diags = Diagnostics::new();
            let ty = self.provider_schema.value_type();
            if let Some(config) = decode_or_report(
                request.config.as_ref(),
                &ty,
                "provider configuration",
                &mut diags,
            ) {
                let ctx = self.ctx(Vec::new());
                self.provider
                    .configure(&ctx, &request.terraform_version, config, &mut diags)
                    .await;
            }
            pb::configure_provider::Response {
                diagnostics: diags.to_proto(),
            }
        };
        let response = guarded("ConfigureProvider", body, |diagnostics| {
            pb::configure_provider::Response { diagnostics }
        })
        .await;
        Ok(Response::new(response))
    }

    async fn read_resource(
        &self,
        request: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        let request = request.into_inner();
        let private = request.private.clone();
        let body = async {
            let mut diags = Diagnostics::new();
            let new_state = self.read(&request, &mut diags).await;
            pb::read_resource::Response {
                new_state,
                diagnostics: diags.to_proto(),
                private: request.private.clone(),
            }
        };
        // On panic keep what Terraform has: the current state, unchanged.
        let response = guarded("ReadResource", body, |diagnostics| {
            pb::read_resource::Response {
                new_state: request.current_state.clone(),
                diagnostics,
                private,
            }
        })
        .await;
        Ok(Response::new(response))
    }

    async fn plan_resource_change(
        &self,
        request: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        let request = request.into_inner();
        let body = async {
            let mut diags = Diagnostics::new();
            let mut response = self.plan(&request, &mut diags).await;
            response.diagnostics = diags.to_proto();
            response
        };
        let response = guarded("PlanResourceChange", body, |diagnostics| {
            pb::plan_resource_change::Response {
                diagnostics,
                ..Default::default()
            }
        })
        .await;
        Ok(Response::new(response))
    }

    async fn apply_resource_change(
        &self,
        request: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        let request = request.into_inner();
        let body = async {
            let mut diags = Diagnostics::new();
            let new_state = self.apply(&request, &mut diags).await;
            pb::apply_resource_change::Response {
                new_state,
                private: request.planned_private.clone(),
                diagnostics: diags.to_proto(),
                legacy_type_system: false,
            }
        };
        // On panic report the prior state so nothing Terraform knew about is forgotten.
        let prior = request.prior_state.clone();
        let response = guarded("ApplyResourceChange", body, |diagnostics| {
            pb::apply_resource_change::Response {
                new_state: prior,
                diagnostics,
                ..Default::default()
            }
        })
        .await;
        Ok(Response::new(response))
    }

    async fn import_resource_state(
        &self,
        request: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        let request = request.into_inner();
        let body = async {
            let mut diags = Diagnostics::new();
            let mut imported_resources = Vec::new();
            if let Some((resource, schema)) = self.resource(&request.type_name, &mut diags) {
                let ctx = self.ctx(Vec::new());
                let imported = resource.import(&ctx, &request.id, &mut diags).await;
                match imported {
                    Some(state) => {
                        if let Some(state) =
                            encode_dynamic(&state, &schema.value_type(), &mut diags)
                        {
                            imported_resources.push(pb::import_resource_state::ImportedResource {
                                type_name: request.type_name.clone(),
                                state: Some(state),
                                private: Vec::new(),
                            });
                        }
                    }
                    None => missing_result(&mut diags, "import"),
                }
            }
            pb::import_resource_state::Response {
                imported_resources,
                diagnostics: diags.to_proto(),
            }
        };
        let response = guarded("ImportResourceState", body, |diagnostics| {
            pb::import_resource_state::Response {
                imported_resources: Vec::new(),
                diagnostics,
            }
        })
        .await;
        Ok(Response::new(response))
    }

    async fn read_data_source(
        &self,
        request: Request<pb::read_data_source::Request>,
    ) -> Result<Response<pb::read_data_source::Response>, Status> {
        let request = request.into_inner();
        let body = async {
            let mut diags = Diagnostics::new();
            let mut state = None;
            if let Some((data_source, schema)) = self.data_source(&request.type_name, &mut diags) {
                let ty = schema.value_type();
                if let Some(config) =
                    decode_or_report(request.config.as_ref(), &ty, "configuration", &mut diags)
                {
                    let ctx = self.ctx(Vec::new());
                    match data_source.read(&ctx, config, &mut diags).await {
                        Some(value) => state = encode_dynamic(&value, &ty, &mut diags),
                        None => missing_result(&mut diags, "read"),
                    }
                }
            }
            pb::read_data_source::Response {
                state,
                diagnostics: diags.to_proto(),
            }
        };
        let response = guarded("ReadDataSource", body, |diagnostics| {
            pb::read_data_source::Response {
                state: None,
                diagnostics,
            }
        })
        .await;
        Ok(Response::new(response))
    }

    async fn stop_provider(
        &self,
        _request: Request<pb::stop_provider::Request>,
    ) -> Result<Response<pb::stop_provider::Response>, Status> {
        tracing::info!("StopProvider: cancelling in-flight operations");
        self.stop.cancel();
        Ok(Response::new(pb::stop_provider::Response {
            error: String::new(),
        }))
    }
}

impl ProviderService {
    async fn upgrade(
        &self,
        request: &pb::upgrade_resource_state::Request,
        diags: &mut Diagnostics,
    ) -> Option<pb::DynamicValue> {
        let (resource, schema) = self.resource(&request.type_name, diags)?;
        let ty = schema.value_type();
        let raw = request
            .raw_state
            .as_ref()
            .map(|r| r.json.as_slice())
            .unwrap_or_default();
        if raw.is_empty() {
            diags.root_error(
                "Cannot upgrade state",
                "Only JSON state is supported; legacy flatmap state is not.",
            );
            return None;
        }
        let upgraded = if request.version == schema.version {
            match Value::from_wire_json(raw, &ty) {
                Ok(value) => value,
                Err(e) => {
                    diags.from_error("Stored state does not match the schema", &e);
                    return None;
                }
            }
        } else {
            let raw_json = match serde_json::from_slice(raw) {
                Ok(json) => json,
                Err(e) => {
                    diags.root_error("Stored state is not valid JSON", e.to_string());
                    return None;
                }
            };
            resource.upgrade(request.version, raw_json, diags).await?
        };
        encode_dynamic(&upgraded, &ty, diags)
    }

    async fn read(
        &self,
        request: &pb::read_resource::Request,
        diags: &mut Diagnostics,
    ) -> Option<pb::DynamicValue> {
        let Some((resource, schema)) = self.resource(&request.type_name, diags) else {
            return request.current_state.clone();
        };
        let ty = schema.value_type();
        let Some(current) = decode_or_report(request.current_state.as_ref(), &ty, "state", diags)
        else {
            return request.current_state.clone();
        };
        let ctx = self.ctx(request.private.clone());
        match resource.read(&ctx, current, diags).await {
            Some(state) => encode_dynamic(&state, &ty, diags),
            // Errors without a state: keep the current one rather than forget the object.
            None if diags.has_errors() => request.current_state.clone(),
            None => encode_dynamic(&Value::Null, &ty, diags),
        }
    }

    async fn plan(
        &self,
        request: &pb::plan_resource_change::Request,
        diags: &mut Diagnostics,
    ) -> pb::plan_resource_change::Response {
        let mut response = pb::plan_resource_change::Response {
            planned_private: request.prior_private.clone(),
            ..Default::default()
        };
        let Some((resource, schema)) = self.resource(&request.type_name, diags) else {
            return response;
        };
        let ty = schema.value_type();
        let decoded = (
            decode_or_report(request.prior_state.as_ref(), &ty, "prior state", diags),
            decode_or_report(
                request.proposed_new_state.as_ref(),
                &ty,
                "proposed state",
                diags,
            ),
            decode_or_report(request.config.as_ref(), &ty, "configuration", diags),
        );
        let (Some(prior), Some(proposed), Some(config)) = decoded else {
            return response;
        };
        if proposed.is_null() {
            // Destroy: nothing to plan (only Terraform 1.3+ asks, because of plan_destroy).
            response.planned_state = encode_dynamic(&Value::Null, &ty, diags);
            return response;
        }
        let mut plan = Plan {
            prior: if prior.is_null() { None } else { Some(prior) },
            proposed,
            config,
            planned: Value::Null,
            requires_replace: Vec::new(),
            private: request.prior_private.clone(),
        };
        default_plan(schema, &mut plan);
        let ctx = self.ctx(request.prior_private.clone());
        resource.plan(&ctx, &mut plan, diags).await;
        response.planned_state = encode_dynamic(&plan.planned, &ty, diags);
        response.requires_replace = plan.requires_replace.iter().map(|p| p.to_proto()).collect();
        response.planned_private = plan.private;
        response
    }

    async fn apply(
        &self,
        request: &pb::apply_resource_change::Request,
        diags: &mut Diagnostics,
    ) -> Option<pb::DynamicValue> {
        let Some((resource, schema)) = self.resource(&request.type_name, diags) else {
            return request.prior_state.clone();
        };
        let ty = schema.value_type();
        let prior = decode_or_report(request.prior_state.as_ref(), &ty, "prior state", diags);
        let planned = decode_or_report(request.planned_state.as_ref(), &ty, "planned state", diags);
        let (Some(prior), Some(planned)) = (prior, planned) else {
            return request.prior_state.clone();
        };
        let ctx = self.ctx(request.planned_private.clone());
        if planned.is_null() {
            resource.delete(&ctx, prior, diags).await;
            // A failed delete keeps the object in state.
            return if diags.has_errors() {
                request.prior_state.clone()
            } else {
                encode_dynamic(&Value::Null, &ty, diags)
            };
        }
        if prior.is_null() {
            return match resource.create(&ctx, planned, diags).await {
                // With errors too: Terraform saves it as tainted, so nothing created is lost.
                Some(state) => encode_dynamic(&state, &ty, diags),
                None => {
                    missing_result(diags, "create");
                    encode_dynamic(&Value::Null, &ty, diags)
                }
            };
        }
        match resource.update(&ctx, prior, planned, diags).await {
            Some(state) => encode_dynamic(&state, &ty, diags),
            None => {
                missing_result(diags, "update");
                request.prior_state.clone()
            }
        }
    }
}
