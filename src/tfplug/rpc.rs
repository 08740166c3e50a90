//! The tfplugin6 `Provider` gRPC service: decodes requests with the schemas, dispatches to the
//! provider/resource traits, and turns every failure (including panics) into diagnostics.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::Error;
use super::codec::{decode_msgpack, encode_msgpack};
use super::diag::Diagnostics;
use super::ephemeral::EphemeralResource;
use super::proto::tfplugin6 as pb;
use super::provider::Provider;
use super::resource::{Ctx, DataSource, Plan, Resource, default_plan, plan_replacements};
use super::schema::{Schema, deprecation_warnings};
use super::types::Type;
use super::value::{Value, exact_state_json};

pub(crate) struct ProviderService {
    provider: Arc<dyn Provider>,
    provider_schema: Schema,
    resources: HashMap<String, (Arc<dyn Resource>, Schema)>,
    data_sources: HashMap<String, (Arc<dyn DataSource>, Schema)>,
    ephemeral_resources: HashMap<String, (Arc<dyn EphemeralResource>, Schema)>,
    /// Fired by StopProvider; handed to operations through `Ctx`. StopProvider swaps in a
    /// fresh token, so calls that start after it are not born cancelled.
    stop: Mutex<CancellationToken>,
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
        let ephemeral_resources = provider
            .ephemeral_resources()
            .into_iter()
            .map(|e| (e.type_name().to_string(), (e.clone(), e.schema())))
            .collect();
        ProviderService {
            provider_schema: provider.schema(),
            provider,
            resources,
            data_sources,
            ephemeral_resources,
            stop: Mutex::new(CancellationToken::new()),
        }
    }

    fn ctx(&self, private: Vec<u8>) -> Ctx {
        Ctx::new(self.current_stop_token(), private)
    }

    fn current_stop_token(&self) -> CancellationToken {
        self.stop.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Cancels every call in flight and arms a fresh token for the calls that follow.
    fn stop_in_flight(&self) {
        let fired = std::mem::take(&mut *self.stop.lock().unwrap_or_else(|e| e.into_inner()));
        fired.cancel();
    }

    fn resource(
        &self,
        type_name: &str,
        diags: &mut Diagnostics,
    ) -> Option<(Arc<dyn Resource>, &Schema)> {
        registered(&self.resources, "resource type", type_name, diags)
    }

    fn data_source(
        &self,
        type_name: &str,
        diags: &mut Diagnostics,
    ) -> Option<(Arc<dyn DataSource>, &Schema)> {
        registered(&self.data_sources, "data source", type_name, diags)
    }

    fn ephemeral_resource(
        &self,
        type_name: &str,
        diags: &mut Diagnostics,
    ) -> Option<(Arc<dyn EphemeralResource>, &Schema)> {
        registered(
            &self.ephemeral_resources,
            "ephemeral resource",
            type_name,
            diags,
        )
    }

    fn capabilities() -> pb::ServerCapabilities {
        pb::ServerCapabilities {
            plan_destroy: true,
            get_provider_schema_optional: true,
        }
    }
}

/// The implementation and schema registered under `type_name`, or an error saying this provider
/// has no such `kind` ("resource type", "data source", "ephemeral resource"). The RPC's span
/// records the type.
fn registered<'a, T: ?Sized>(
    registry: &'a HashMap<String, (Arc<T>, Schema)>,
    kind: &str,
    type_name: &str,
    diags: &mut Diagnostics,
) -> Option<(Arc<T>, &'a Schema)> {
    tracing::Span::current().record("tf_resource_type", type_name);
    match registry.get(type_name) {
        Some((registered, schema)) => Some((registered.clone(), schema)),
        None => {
            diags.root_error(
                format!("Unknown {kind}"),
                format!("This provider has no {kind} {type_name:?}."),
            );
            None
        }
    }
}

/// Answers one RPC: runs `body` guarded (a panic answers with `on_panic`) and wraps the answer.
async fn respond<T>(
    rpc: &str,
    body: impl Future<Output = T>,
    on_panic: impl FnOnce(Vec<pb::Diagnostic>) -> T,
) -> Result<Response<T>, Status> {
    Ok(Response::new(guarded(rpc, body, on_panic).await))
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
    let mut body = Box::pin(body);
    let marked = futures::future::poll_fn(move |cx| {
        let _inside = GuardedPoll::enter();
        body.as_mut().poll(cx)
    });
    match AssertUnwindSafe(marked).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let location = CAUGHT_PANIC_LOCATION.with(|l| l.take()).unwrap_or_default();
            let mut diags = Diagnostics::new();
            diags.root_error(
                "Provider internal error",
                format!(
                    "The provider panicked during {rpc} ({}) at {location}.\n\nThis is a bug in the provider; please report it.",
                    static_panic_text(panic.as_ref())
                ),
            );
            on_panic(diags.to_proto())
        }
    }
}

/// Only a literal panic message is shown: formatted ones (`expect`, `panic!("{x}")`) may carry
/// attribute values or credentials.
fn static_panic_text(payload: &(dyn std::any::Any + Send)) -> &'static str {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .unwrap_or("message withheld: it may contain values")
}

thread_local! {
    /// How many guarded RPC bodies this thread is polling right now.
    static GUARDED_DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// Where the last panic inside a guarded body happened (set by the panic hook).
    static CAUGHT_PANIC_LOCATION: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

struct GuardedPoll;

impl GuardedPoll {
    fn enter() -> GuardedPoll {
        GUARDED_DEPTH.with(|d| d.set(d.get() + 1));
        GuardedPoll
    }
}

impl Drop for GuardedPoll {
    // Runs during unwinding too, so the depth stays right after a caught panic.
    fn drop(&mut self) {
        GUARDED_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Called from the panic hook: true (and the location remembered for the diagnostic) when the
/// panic will be caught by [`guarded`] and turned into a diagnostic.
pub(crate) fn panic_will_be_caught(location: &str) -> bool {
    let inside = GUARDED_DEPTH.with(|d| d.get() > 0);
    if inside {
        CAUGHT_PANIC_LOCATION.with(|l| *l.borrow_mut() = Some(location.to_string()));
    }
    inside
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

/// Encodes `state`; when it does not fit the schema, reports that and answers with `fallback`.
fn encode_or_fallback(
    state: &Value,
    fallback: &Value,
    ty: &Type,
    diags: &mut Diagnostics,
) -> Option<pb::DynamicValue> {
    match encode_msgpack(state, ty) {
        Ok(msgpack) => Some(pb::DynamicValue {
            msgpack,
            json: Vec::new(),
        }),
        Err(e) => {
            diags.from_error(
                "Internal error: the provider produced a value that does not fit its schema; the planned values were saved instead",
                &e,
            );
            encode_dynamic(fallback, ty, diags)
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

/// A configuration to validate: decoded with `schema`, with a warning for each deprecated
/// attribute it sets.
fn config_to_validate(
    config: Option<&pb::DynamicValue>,
    schema: &Schema,
    what: &str,
    diags: &mut Diagnostics,
) -> Option<Value> {
    let config = decode_or_report(config, &schema.value_type(), what, diags)?;
    deprecation_warnings(&schema.block, &config, diags);
    Some(config)
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
        let mut ephemeral_resources: Vec<_> = self.ephemeral_resources.keys().cloned().collect();
        ephemeral_resources.sort();
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
            ephemeral_resources: ephemeral_resources
                .into_iter()
                .map(|type_name| pb::get_metadata::EphemeralMetadata { type_name })
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
            ephemeral_resource_schemas: self
                .ephemeral_resources
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
            if let Some(config) = config_to_validate(
                request.config.as_ref(),
                &self.provider_schema,
                "provider configuration",
                &mut diags,
            ) {
                self.provider.validate(&config, &mut diags).await;
            }
            pb::validate_provider_config::Response {
                diagnostics: diags.to_proto(),
            }
        };
        respond("ValidateProviderConfig", body, |diagnostics| {
            pb::validate_provider_config::Response { diagnostics }
        })
        .await
    }

    async fn validate_resource_config(
        &self,
        request: Request<pb::validate_resource_config::Request>,
    ) -> Result<Response<pb::validate_resource_config::Response>, Status> {
        let request = request.into_inner();
        let body = async {
            let mut diags = Diagnostics::new();
            if let Some((resource, schema)) = self.resource(&request.type_name, &mut diags)
                && let Some(config) =
                    config_to_validate(request.config.as_ref(), schema, "configuration", &mut diags)
            {
                let write_only_allowed = request
                    .client_capabilities
                    .as_ref()
                    .is_some_and(|c| c.write_only_attributes_allowed);
                if !write_only_allowed && schema.block.has_write_only() {
                    schema.block.refuse_write_only(&config, &mut diags);
                }
                resource.validate(&config, &mut diags).await;
            }
            pb::validate_resource_config::Response {
                diagnostics: diags.to_proto(),
            }
        };
        respond("ValidateResourceConfig", body, |diagnostics| {
            pb::validate_resource_config::Response { diagnostics }
        })
        .await
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<pb::validate_data_resource_config::Request>,
    ) -> Result<Response<pb::validate_data_resource_config::Response>, Status> {
        let request = request.into_inner();
        let body = async {
            let mut diags = Diagnostics::new();
            if let Some((data_source, schema)) = self.data_source(&request.type_name, &mut diags)
                && let Some(config) =
                    config_to_validate(request.config.as_ref(), schema, "configuration", &mut diags)
            {
                data_source.validate(&config, &mut diags).await;
            }
            pb::validate_data_resource_config::Response {
                diagnostics: diags.to_proto(),
            }
        };
        respond("ValidateDataResourceConfig", body, |diagnostics| {
            pb::validate_data_resource_config::Response { diagnostics }
        })
        .await
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
        respond("UpgradeResourceState", body, |diagnostics| {
            pb::upgrade_resource_state::Response {
                upgraded_state: None,
                diagnostics,
            }
        })
        .await
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
        respond("ConfigureProvider", body, |diagnostics| {
            pb::configure_provider::Response { diagnostics }
        })
        .await
    }

    async fn read_resource(
        &self,
        request: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        let request = request.into_inner();
        let private = request.private.clone();
        let body = async {
            let mut diags = Diagnostics::new();
            let ctx = self.ctx(request.private.clone());
            let new_state = self.read(&request, &ctx, &mut diags).await;
            pb::read_resource::Response {
                new_state,
                diagnostics: diags.to_proto(),
                private: ctx.private_to_return(),
            }
        };
        // On panic keep what Terraform has: the current state, unchanged.
        respond("ReadResource", body, |diagnostics| {
            pb::read_resource::Response {
                new_state: request.current_state.clone(),
                diagnostics,
                private,
            }
        })
        .await
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
        respond("PlanResourceChange", body, |diagnostics| {
            pb::plan_resource_change::Response {
                diagnostics,
                ..Default::default()
            }
        })
        .await
    }

    async fn apply_resource_change(
        &self,
        request: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        let request = request.into_inner();
        let body = async {
            let mut diags = Diagnostics::new();
            let ctx = self.apply_ctx(&request, &mut diags);
            let new_state = self.apply(&request, &ctx, &mut diags).await;
            pb::apply_resource_change::Response {
                new_state,
                private: ctx.private_to_return(),
                diagnostics: diags.to_proto(),
                legacy_type_system: false,
            }
        };
        // On panic report the prior state and private state so nothing Terraform knew about
        // is forgotten.
        let (prior, private) = (request.prior_state.clone(), request.planned_private.clone());
        respond("ApplyResourceChange", body, |diagnostics| {
            pb::apply_resource_change::Response {
                new_state: prior,
                private,
                diagnostics,
                legacy_type_system: false,
            }
        })
        .await
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
                let private = ctx.private_to_return();
                match imported {
                    Some(mut state) => {
                        schema.block.null_write_only(&mut state);
                        if let Some(state) =
                            encode_dynamic(&state, &schema.value_type(), &mut diags)
                        {
                            imported_resources.push(pb::import_resource_state::ImportedResource {
                                type_name: request.type_name.clone(),
                                state: Some(state),
                                private,
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
        respond("ImportResourceState", body, |diagnostics| {
            pb::import_resource_state::Response {
                imported_resources: Vec::new(),
                diagnostics,
            }
        })
        .await
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
        respond("ReadDataSource", body, |diagnostics| {
            pb::read_data_source::Response {
                state: None,
                diagnostics,
            }
        })
        .await
    }

    async fn validate_ephemeral_resource_config(
        &self,
        request: Request<pb::validate_ephemeral_resource_config::Request>,
    ) -> Result<Response<pb::validate_ephemeral_resource_config::Response>, Status> {
        let request = request.into_inner();
        let body = async {
            let mut diags = Diagnostics::new();
            if let Some((ephemeral, schema)) =
                self.ephemeral_resource(&request.type_name, &mut diags)
                && let Some(config) =
                    config_to_validate(request.config.as_ref(), schema, "configuration", &mut diags)
            {
                ephemeral.validate(&config, &mut diags).await;
            }
            pb::validate_ephemeral_resource_config::Response {
                diagnostics: diags.to_proto(),
            }
        };
        respond("ValidateEphemeralResourceConfig", body, |diagnostics| {
            pb::validate_ephemeral_resource_config::Response { diagnostics }
        })
        .await
    }

    async fn open_ephemeral_resource(
        &self,
        request: Request<pb::open_ephemeral_resource::Request>,
    ) -> Result<Response<pb::open_ephemeral_resource::Response>, Status> {
        let request = request.into_inner();
        let body = async {
            let mut diags = Diagnostics::new();
            let mut response = pb::open_ephemeral_resource::Response::default();
            if let Some((ephemeral, schema)) =
                self.ephemeral_resource(&request.type_name, &mut diags)
            {
                let ty = schema.value_type();
                if let Some(config) =
                    decode_or_report(request.config.as_ref(), &ty, "configuration", &mut diags)
                {
                    let ctx = self.ctx(Vec::new());
                    match ephemeral.open(&ctx, config, &mut diags).await {
                        Some(opened) => {
                            response.result = encode_dynamic(&opened.result, &ty, &mut diags);
                            response.renew_at = opened.renew_at.map(Into::into);
                            response.private = Some(opened.private);
                        }
                        None => missing_result(&mut diags, "open"),
                    }
                }
            }
            response.diagnostics = diags.to_proto();
            response
        };
        respond("OpenEphemeralResource", body, |diagnostics| {
            pb::open_ephemeral_resource::Response {
                diagnostics,
                ..Default::default()
            }
        })
        .await
    }

    async fn renew_ephemeral_resource(
        &self,
        request: Request<pb::renew_ephemeral_resource::Request>,
    ) -> Result<Response<pb::renew_ephemeral_resource::Response>, Status> {
        let request = request.into_inner();
        let body = async {
            let mut diags = Diagnostics::new();
            let mut response = pb::renew_ephemeral_resource::Response::default();
            if let Some((ephemeral, _)) = self.ephemeral_resource(&request.type_name, &mut diags) {
                let private = request.private.clone().unwrap_or_default();
                let renewed = ephemeral
                    .renew(&self.ctx(private.clone()), private, &mut diags)
                    .await;
                response.renew_at = renewed.renew_at.map(Into::into);
                response.private = renewed.private.or(request.private.clone());
            }
            response.diagnostics = diags.to_proto();
            response
        };
        respond("RenewEphemeralResource", body, |diagnostics| {
            pb::renew_ephemeral_resource::Response {
                diagnostics,
                ..Default::default()
            }
        })
        .await
    }

    async fn close_ephemeral_resource(
        &self,
        request: Request<pb::close_ephemeral_resource::Request>,
    ) -> Result<Response<pb::close_ephemeral_resource::Response>, Status> {
        let request = request.into_inner();
        let body = async {
            let mut diags = Diagnostics::new();
            if let Some((ephemeral, _)) = self.ephemeral_resource(&request.type_name, &mut diags) {
                let private = request.private.clone().unwrap_or_default();
                ephemeral
                    .close(&self.ctx(private.clone()), private, &mut diags)
                    .await;
            }
            pb::close_ephemeral_resource::Response {
                diagnostics: diags.to_proto(),
            }
        };
        respond("CloseEphemeralResource", body, |diagnostics| {
            pb::close_ephemeral_resource::Response { diagnostics }
        })
        .await
    }

    async fn stop_provider(
        &self,
        _request: Request<pb::stop_provider::Request>,
    ) -> Result<Response<pb::stop_provider::Response>, Status> {
        tracing::info!("StopProvider: cancelling in-flight operations");
        self.stop_in_flight();
        Ok(Response::new(pb::stop_provider::Response {
            error: String::new(),
        }))
    }
}

impl ProviderService {
    /// Resources with write-only attributes get the configuration: it is the only place
    /// Terraform sends their values.
    fn apply_ctx(
        &self,
        request: &pb::apply_resource_change::Request,
        diags: &mut Diagnostics,
    ) -> Ctx {
        let ctx = self.ctx(request.planned_private.clone());
        let Some((_, schema)) = self.resources.get(&request.type_name) else {
            return ctx;
        };
        if !schema.block.has_write_only() {
            return ctx;
        }
        match decode_or_report(
            request.config.as_ref(),
            &schema.value_type(),
            "configuration",
            diags,
        ) {
            Some(config) => ctx.with_config(config),
            None => ctx,
        }
    }

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
            let raw_json = match exact_state_json(raw) {
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
        ctx: &Ctx,
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
        match resource.read(ctx, current, diags).await {
            Some(mut state) => {
                schema.block.null_write_only(&mut state);
                encode_dynamic(&state, &ty, diags)
            }
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
        plan_replacements(schema, &mut plan);
        schema.block.null_write_only(&mut plan.planned);
        response.planned_state = encode_dynamic(&plan.planned, &ty, diags);
        response.requires_replace = plan.requires_replace.iter().map(|p| p.to_proto()).collect();
        response.planned_private = plan.private;
        response
    }

    async fn apply(
        &self,
        request: &pb::apply_resource_change::Request,
        ctx: &Ctx,
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
        if planned.is_null() {
            resource.delete(ctx, prior, diags).await;
            // A failed delete keeps the object in state.
            return if diags.has_errors() {
                request.prior_state.clone()
            } else {
                encode_dynamic(&Value::Null, &ty, diags)
            };
        }
        // If the new state cannot be encoded, the planned one (unknowns as null) is saved so a
        // created or updated object is not forgotten.
        let mut fallback = planned.unknowns_as_null();
        schema.block.null_write_only(&mut fallback);
        if prior.is_null() {
            return match resource.create(ctx, planned, diags).await {
                // With errors too: Terraform saves it as tainted, so nothing created is lost.
                Some(mut state) => {
                    schema.block.null_write_only(&mut state);
                    encode_or_fallback(&state, &fallback, &ty, diags)
                }
                None => {
                    missing_result(diags, "create");
                    encode_dynamic(&Value::Null, &ty, diags)
                }
            };
        }
        match resource.update(ctx, prior, planned, diags).await {
            Some(mut state) => {
                schema.block.null_write_only(&mut state);
                encode_or_fallback(&state, &fallback, &ty, diags)
            }
            None => {
                missing_result(diags, "update");
                request.prior_state.clone()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tfplug::schema::Attribute;
    use crate::tfplug::{Block, Number};
    use pb::provider_server::Provider as _;

    /// `behaviour` steers the one resource: "panic", "bad-state", "private" or "wait".
    struct TestProvider;
    struct TestResource;

    fn schema() -> Schema {
        let mut id = Attribute::new("id", Type::String);
        id.computed = true;
        id.optional = false;
        let mut behaviour = Attribute::new("behaviour", Type::String);
        behaviour.computed = true;
        behaviour.requires_replace = true;
        Schema {
            version: 0,
            block: Block {
                attributes: vec![behaviour, id],
                ..Block::default()
            },
        }
    }

    fn behaviour(value: &Value) -> String {
        value
            .get_attr("behaviour")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    #[async_trait::async_trait]
    impl Provider for TestProvider {
        fn schema(&self) -> Schema {
            Schema::default()
        }
        async fn configure(&self, _: &Ctx, _: &str, _: Value, _: &mut Diagnostics) {}
        fn resources(&self) -> Vec<Arc<dyn Resource>> {
            vec![Arc::new(TestResource)]
        }
        fn ephemeral_resources(&self) -> Vec<Arc<dyn EphemeralResource>> {
            vec![Arc::new(TestEphemeral)]
        }
    }

    struct TestEphemeral;

    #[async_trait::async_trait]
    impl EphemeralResource for TestEphemeral {
        fn type_name(&self) -> &'static str {
            "test_token"
        }
        fn schema(&self) -> Schema {
            let mut token = Attribute::new("token", Type::String);
            token.computed = true;
            token.optional = false;
            Schema {
                version: 0,
                block: Block {
                    attributes: vec![token],
                    ..Block::default()
                },
            }
        }
        async fn open(
            &self,
            _: &Ctx,
            _: Value,
            _: &mut Diagnostics,
        ) -> Option<crate::tfplug::Opened> {
            Some(crate::tfplug::Opened {
                result: Value::object([("token", Value::string("t0k3n"))]),
                renew_at: Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(60)),
                private: b"handle".to_vec(),
            })
        }
        async fn close(&self, _: &Ctx, private: Vec<u8>, diags: &mut Diagnostics) {
            if private != b"handle" {
                diags.root_error("wrong private", "");
            }
        }
    }

    #[async_trait::async_trait]
    impl Resource for TestResource {
        fn type_name(&self) -> &'static str {
            "test_thing"
        }
        fn schema(&self) -> Schema {
            schema()
        }
        async fn plan(&self, _: &Ctx, plan: &mut Plan, _: &mut Diagnostics) {
            if plan
                .config
                .get_attr("behaviour")
                .is_some_and(Value::is_null)
            {
                plan.planned.set_attr("behaviour", Value::string("default"));
            }
        }
        async fn create(&self, ctx: &Ctx, planned: Value, _: &mut Diagnostics) -> Option<Value> {
            match behaviour(&planned).as_str() {
                "panic" => panic!("boom"),
                "bad-state" => Some(Value::object([
                    ("behaviour", Value::Number(Number::Int(1))),
                    ("id", Value::Bool(true)),
                ])),
                "wait" => {
                    ctx.cancelled.cancelled().await;
                    Some(planned.unknowns_as_null())
                }
                _ => {
                    ctx.set_private(b"created".to_vec());
                    let mut state = planned;
                    state.set_attr("id", Value::string("x"));
                    Some(state)
                }
            }
        }
        async fn read(&self, ctx: &Ctx, state: Value, _: &mut Diagnostics) -> Option<Value> {
            ctx.set_private([ctx.private.as_slice(), b"+read"].concat());
            Some(state)
        }
        async fn update(&self, _: &Ctx, _: Value, p: Value, _: &mut Diagnostics) -> Option<Value> {
            Some(p)
        }
        async fn delete(&self, _: &Ctx, _: Value, _: &mut Diagnostics) {}
        async fn import(&self, ctx: &Ctx, id: &str, _: &mut Diagnostics) -> Option<Value> {
            ctx.set_private(b"imported".to_vec());
            Some(Value::object([
                ("behaviour", Value::Null),
                ("id", Value::string(id)),
            ]))
        }
    }

    fn service() -> ProviderService {
        ProviderService::new(Arc::new(TestProvider))
    }

    fn dynamic(value: &Value) -> Option<pb::DynamicValue> {
        Some(pb::DynamicValue {
            msgpack: encode_msgpack(value, &schema().value_type()).unwrap(),
            json: Vec::new(),
        })
    }

    fn thing(behaviour: &str, id: Value) -> Value {
        Value::object([("behaviour", Value::string(behaviour)), ("id", id)])
    }

    fn create_request(behaviour: &str) -> pb::apply_resource_change::Request {
        pb::apply_resource_change::Request {
            type_name: "test_thing".into(),
            prior_state: dynamic(&Value::Null),
            planned_state: dynamic(&thing(behaviour, Value::Unknown)),
            config: dynamic(&thing(behaviour, Value::Null)),
            planned_private: b"planned".to_vec(),
            ..Default::default()
        }
    }

    fn state_of(value: Option<&pb::DynamicValue>) -> Value {
        decode_msgpack(&value.unwrap().msgpack, &schema().value_type()).unwrap()
    }

    #[tokio::test]
    async fn private_state_is_written_from_read_apply_and_import() {
        let service = service();
        let created = service
            .apply_resource_change(Request::new(create_request("ok")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(created.private, b"created");
        let read = service
            .read_resource(Request::new(pb::read_resource::Request {
                type_name: "test_thing".into(),
                current_state: created.new_state.clone(),
                private: created.private.clone(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(read.private, b"created+read");
        let imported = service
            .import_resource_state(Request::new(pb::import_resource_state::Request {
                type_name: "test_thing".into(),
                id: "i".into(),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(imported.imported_resources[0].private, b"imported");
    }

    #[tokio::test]
    async fn panic_in_apply_keeps_prior_state_and_private_state() {
        let response = service()
            .apply_resource_change(Request::new(create_request("panic")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(response.private, b"planned");
        assert_eq!(response.diagnostics.len(), 1);
        assert!(state_of(response.new_state.as_ref()).is_null());
    }

    #[tokio::test]
    async fn state_that_does_not_fit_after_create_saves_the_planned_state() {
        let response = service()
            .apply_resource_change(Request::new(create_request("bad-state")))
            .await
            .unwrap()
            .into_inner();
        assert!(!response.diagnostics.is_empty());
        let saved = state_of(response.new_state.as_ref());
        assert_eq!(saved, thing("bad-state", Value::Null));
    }

    #[tokio::test]
    async fn stop_provider_cancels_calls_in_flight_and_not_later_ones() {
        let service = Arc::new(service());
        let waiting = {
            let service = service.clone();
            tokio::spawn(async move {
                service
                    .apply_resource_change(Request::new(create_request("wait")))
                    .await
            })
        };
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        service
            .stop_provider(Request::new(pb::stop_provider::Request {}))
            .await
            .unwrap();
        let stopped = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("the call in flight was cancelled")
            .unwrap()
            .unwrap()
            .into_inner();
        assert!(stopped.diagnostics.is_empty());
        let later = service.ctx(Vec::new());
        assert!(
            !later.is_cancelled(),
            "a call after StopProvider starts cancelled"
        );
    }

    #[tokio::test]
    async fn plan_replaces_when_the_resource_plans_a_default_over_a_prior_value() {
        // `behaviour` is optional+computed and requires replacement; it was "custom" and is
        // now left out, so Terraform proposes "custom" and the resource plans its default.
        let prior = thing("custom", Value::string("x"));
        let response = service()
            .plan_resource_change(Request::new(pb::plan_resource_change::Request {
                type_name: "test_thing".into(),
                prior_state: dynamic(&prior),
                proposed_new_state: dynamic(&prior),
                config: dynamic(&Value::object([
                    ("behaviour", Value::Null),
                    ("id", Value::Null),
                ])),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(
            response.diagnostics.is_empty(),
            "{:?}",
            response.diagnostics
        );
        assert_eq!(
            state_of(response.planned_state.as_ref()).get_attr("behaviour"),
            Some(&Value::string("default"))
        );
        assert_eq!(
            response.requires_replace,
            vec![crate::tfplug::AttributePath::new("behaviour").to_proto()]
        );
    }

    #[tokio::test]
    async fn ephemeral_resources_are_advertised_opened_and_closed() {
        let service = service();
        let metadata = service
            .get_metadata(Request::new(pb::get_metadata::Request {}))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(metadata.ephemeral_resources[0].type_name, "test_token");
        let schemas = service
            .get_provider_schema(Request::new(pb::get_provider_schema::Request {}))
            .await
            .unwrap()
            .into_inner();
        assert!(
            schemas
                .ephemeral_resource_schemas
                .contains_key("test_token")
        );
        let token_type = Type::object([("token", Type::String)]);
        let opened = service
            .open_ephemeral_resource(Request::new(pb::open_ephemeral_resource::Request {
                type_name: "test_token".into(),
                config: Some(pb::DynamicValue {
                    msgpack: encode_msgpack(&Value::object([("token", Value::Null)]), &token_type)
                        .unwrap(),
                    json: Vec::new(),
                }),
                client_capabilities: None,
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(opened.diagnostics.is_empty(), "{:?}", opened.diagnostics);
        let result = decode_msgpack(&opened.result.unwrap().msgpack, &token_type).unwrap();
        assert_eq!(result.get_attr("token"), Some(&Value::string("t0k3n")));
        assert_eq!(opened.renew_at.unwrap().seconds, 60);
        let closed = service
            .close_ephemeral_resource(Request::new(pb::close_ephemeral_resource::Request {
                type_name: "test_token".into(),
                private: opened.private,
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(closed.diagnostics.is_empty(), "{:?}", closed.diagnostics);
    }
}
