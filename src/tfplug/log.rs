//! Logging to stderr as hclog JSON lines, which go-plugin parses and Terraform shows under
//! `TF_LOG` / `TF_LOG_PROVIDER`. Never pass attribute values or credentials to these macros.

use std::fmt::Write as _;
use std::io::Write as _;

use serde_json::{Map, Value as Json};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// The level Terraform asked for: `TF_LOG_PROVIDER`, else `TF_LOG`; off when neither is set.
pub fn level_from_env() -> LevelFilter {
    let setting = std::env::var("TF_LOG_PROVIDER")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| std::env::var("TF_LOG").ok());
    match setting
        .unwrap_or_default()
        .trim()
        .to_ascii_uppercase()
        .as_str()
    {
        "TRACE" | "JSON" => LevelFilter::TRACE,
        "DEBUG" => LevelFilter::DEBUG,
        "INFO" => LevelFilter::INFO,
        "WARN" => LevelFilter::WARN,
        "ERROR" => LevelFilter::ERROR,
        _ => LevelFilter::OFF,
    }
}

/// Installs the stderr logger (once; later calls and an existing subscriber are left alone).
pub fn init() {
    let level = level_from_env();
    // Transport internals log every frame at trace; keep them to warnings.
    let quiet = level.min(LevelFilter::WARN);
    let filter = Targets::new()
        .with_default(level)
        .with_target("h2", quiet)
        .with_target("hyper", quiet)
        .with_target("hyper_util", quiet)
        .with_target("tonic", quiet)
        .with_target("tower", quiet)
        .with_target("rustls", quiet);
    let _ = tracing_subscriber::registry()
        .with(HclogLayer::stderr().with_filter(filter))
        .try_init();
}

/// Writes every event, and the opening of every span, as one hclog line that carries the
/// fields of all spans it happens in (RPC, resource type, cluster step), so a debug log reads as
/// a story: which RPC, for which resource, which step, what happened.
struct HclogLayer {
    sink: Box<dyn Fn(&str) + Send + Sync>,
}

/// The fields a span was created with (and recorded later), kept in the span's extensions.
struct SpanFields(Map<String, Json>);

impl HclogLayer {
    fn stderr() -> Self {
        HclogLayer {
            // One write per line so concurrent events never interleave.
            sink: Box::new(|line| {
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }),
        }
    }

    /// Lines go into `lines` instead of stderr: for tests of what a log shows.
    #[cfg(test)]
    fn capturing(lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>) -> Self {
        HclogLayer {
            sink: Box::new(move |line| lines.lock().unwrap().push(line.to_string())),
        }
    }
}

impl<S> Layer<S> for HclogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut visitor = FieldsVisitor::default();
        attributes.record(&mut visitor);
        span.extensions_mut().insert(SpanFields(visitor.fields));
        let fields = scope_fields(span.scope().from_root());
        let metadata = span.metadata();
        let line = hclog_line(metadata.level(), metadata.target(), |visitor| {
            visitor.fields = fields;
            visitor.message = metadata.name().to_string();
        });
        (self.sink)(&line);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut visitor = FieldsVisitor::default();
        values.record(&mut visitor);
        if let Some(SpanFields(fields)) = span.extensions_mut().get_mut::<SpanFields>() {
            fields.extend(visitor.fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let fields = ctx
            .event_scope(event)
            .map(|scope| scope_fields(scope.from_root()))
            .unwrap_or_default();
        let line = hclog_line(
            event.metadata().level(),
            event.metadata().target(),
            |visitor| {
                visitor.fields = fields;
                event.record(visitor);
            },
        );
        (self.sink)(&line);
    }
}

/// The fields of the spans from the outermost in; an inner span's field wins over an outer one.
fn scope_fields<'a, R: LookupSpan<'a> + 'a>(
    spans: impl Iterator<Item = tracing_subscriber::registry::SpanRef<'a, R>>,
) -> Map<String, Json> {
    let mut fields = Map::new();
    for span in spans {
        if let Some(SpanFields(own)) = span.extensions().get::<SpanFields>() {
            fields.extend(own.clone());
        }
    }
    fields
}

/// `{"@level":"debug","@message":"...","@module":"...","@timestamp":"2006-01-02T15:04:05.000000Z", ...fields}`
fn hclog_line(level: &Level, target: &str, record: impl FnOnce(&mut FieldsVisitor)) -> String {
    let mut visitor = FieldsVisitor::default();
    record(&mut visitor);
    let mut out = visitor.fields;
    out.insert("@level".into(), Json::from(hclog_level(level)));
    out.insert("@message".into(), Json::from(visitor.message));
    out.insert(
        "@module".into(),
        Json::from(target.split("::").next().unwrap_or(target)),
    );
    out.insert("@timestamp".into(), Json::from(timestamp()));
    let mut line = Json::Object(out).to_string();
    line.push('\n');
    line
}

fn hclog_level(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// go-plugin parses exactly `2006-01-02T15:04:05.000000Z07:00`: six fractional digits.
fn timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    let mut out = String::with_capacity(27);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.microsecond()
    );
    out
}

#[derive(Default)]
struct FieldsVisitor {
    message: String,
    fields: Map<String, Json>,
}

impl Visit for FieldsVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, Json::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record(field, Json::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record(field, Json::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record(field, Json::from(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record(field, Json::from(format!("{value:?}")));
    }
}

impl FieldsVisitor {
    fn record(&mut self, field: &Field, value: Json) {
        if field.name() == "message" {
            self.message = match value {
                Json::String(s) => s,
                other => other.to_string(),
            };
        } else {
            self.fields.insert(field.name().to_string(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_is_hclog_json_go_plugin_can_parse() {
        let line = hclog_line(
            &Level::DEBUG,
            "terraform_provider_istio::tfplug::server",
            |v| {
                v.message = "hello".into();
                v.fields
                    .insert("rpc".into(), Json::from("PlanResourceChange"));
            },
        );
        assert!(line.ends_with('\n'));
        let parsed: Json = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["@level"], "debug");
        assert_eq!(parsed["@message"], "hello");
        assert_eq!(parsed["@module"], "terraform_provider_istio");
        assert_eq!(parsed["rpc"], "PlanResourceChange");
        let ts = parsed["@timestamp"].as_str().unwrap();
        // 2006-01-02T15:04:05.000000Z
        assert_eq!(ts.len(), 27, "{ts}");
        assert_eq!(&ts[10..11], "T");
        assert_eq!(&ts[19..20], ".");
        assert!(ts.ends_with('Z'));
    }

    #[tracing::instrument(level = "debug", skip(token))]
    fn issue_token(namespace: &str, token: &str) {
        tracing::debug!(bytes = token.len(), "token issued");
    }

    #[test]
    fn a_line_carries_the_fields_of_its_spans_and_no_skipped_secret() {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(HclogLayer::capturing(lines.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let rpc = tracing::debug_span!(
                "rpc",
                tf_rpc = "ApplyResourceChange",
                tf_resource_type = tracing::field::Empty
            );
            let _inside = rpc.enter();
            rpc.record("tf_resource_type", "example_thing");
            issue_token("ns1", "s3cr3t-t0ken");
        });
        let lines = lines.lock().unwrap();
        assert!(lines.iter().all(|l| !l.contains("s3cr3t")), "{lines:?}");
        let parsed: Vec<Json> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let step = parsed
            .iter()
            .find(|l| l["@message"] == "issue_token")
            .expect("a line when the step starts");
        assert_eq!(step["namespace"], "ns1");
        assert_eq!(step["tf_rpc"], "ApplyResourceChange");
        let event = parsed
            .iter()
            .find(|l| l["@message"] == "token issued")
            .expect("the event");
        assert_eq!(event["tf_rpc"], "ApplyResourceChange");
        assert_eq!(event["tf_resource_type"], "example_thing");
        assert_eq!(event["namespace"], "ns1");
        assert_eq!(event["bytes"], 12);
        assert_eq!(event["@level"], "debug");
    }
}
