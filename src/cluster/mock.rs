//! A mock API server for unit tests of cluster steps (tower-test's mock service behind a
//! `kube::Client`, as kube-rs's controller examples do). Each request is recorded and answered
//! by the test's handler from its method, path, query and body. The acceptance tests run the
//! same steps against a real API server; this only pins down the step logic.

use std::sync::{Arc, Mutex};

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

/// One request as the mock API server saw it.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The JSON body, `Null` when there is none.
    pub body: Value,
}

impl Seen {
    /// `"GET /api/v1/namespaces/ns/secrets/x"`, for compact assertions.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    pub fn is_watch(&self) -> bool {
        self.query.contains("watch=true")
    }
}

/// How the mock answers one request.
pub(crate) enum Reply {
    /// A status code and a JSON body.
    Json(u16, Value),
    /// A watch response: one JSON event per line, then the stream ends.
    Events(Vec<Value>),
    /// No answer at all: the call waits (until the test's deadline or cancellation).
    Hang,
}

/// The requests the mock has seen, in order.
#[derive(Clone, Default)]
pub(crate) struct Recorded(Arc<Mutex<Vec<Seen>>>);

impl Recorded {
    pub fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }

    /// Method and path of every request except watches (whose number depends on timing).
    pub fn lines(&self) -> Vec<String> {
        self.all()
            .iter()
            .filter(|seen| !seen.is_watch())
            .map(Seen::line)
            .collect()
    }
}

/// A client whose API server is `handler`.
pub(crate) fn mock_client(
    mut handler: impl FnMut(&Seen) -> Reply + Send + 'static,
) -> (kube::Client, Recorded) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let recorded = Recorded::default();
    let record = recorded.clone();
    tokio::spawn(async move {
        let mut hanging = Vec::new();
        while let Some((request, respond)) = handle.next_request().await {
            let seen = seen(request).await;
            record.0.lock().unwrap().push(seen.clone());
            match handler(&seen) {
                Reply::Json(status, body) => respond.send_response(response(status, &body)),
                Reply::Events(events) => {
                    let lines: String = events.iter().map(|e| format!("{e}\n")).collect();
                    respond.send_response(
                        Response::builder()
                            .status(200)
                            .body(Body::from(lines.into_bytes()))
                            .unwrap(),
                    );
                }
                Reply::Hang => hanging.push(respond),
            }
        }
    });
    (kube::Client::new(service, "default"), recorded)
}

async fn seen(request: Request<Body>) -> Seen {
    let (parts, body) = request.into_parts();
    let bytes = body.collect_bytes().await.unwrap_or_default();
    Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn response(status: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string().into_bytes()))
        .unwrap()
}

/// A `Status` failure as the API server sends it.
pub(crate) fn status(code: u16, reason: &str) -> Reply {
    Reply::Json(
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": reason, "reason": reason, "code": code}),
    )
}

/// A list response with `items`.
pub(crate) fn list(items: Vec<Value>) -> Reply {
    Reply::Json(
        200,
        json!({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}),
    )
}
