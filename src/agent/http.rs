//! The HTTP side of the agent: the API under `/api/v1` (JSON documents
//! with `outcome`, as the command line's `--json` prints them),
//! `/metrics`, `/healthz` and `/readyz`.
//!
//! | | |
//! |---|---|
//! | `GET /api/v1/status` | every source and target ([`Agent::status`]) |
//! | `GET /api/v1/sources`, `GET /api/v1/targets` | one half of it |
//! | `GET /api/v1/targets/NAME/runs` | the target's runs, newest first |
//! | `POST /api/v1/sources/NAME/ingest` | ingest now (202) |
//! | `POST /api/v1/targets/NAME/reconcile` | check drift and apply now (202) |
//!
//! With a token configured, every `/api` call needs
//! `Authorization: Bearer TOKEN` (compared in constant time), else 401.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::{Agent, work};
use crate::store::Store;

/// The routes, serving `agent`.
pub fn router(agent: Arc<Agent>) -> Router {
    let api = Router::new()
        .route("/status", get(status))
        .route("/sources", get(sources))
        .route("/targets", get(targets))
        .route("/targets/{name}/runs", get(runs))
        .route("/sources/{name}/ingest", post(ingest))
        .route("/targets/{name}/reconcile", post(reconcile))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(agent.clone(), auth));
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(agent)
}

/// A JSON document with `outcome` and the status code.
fn document(code: StatusCode, outcome: &str, fields: Value) -> Response {
    let mut doc = match fields {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    doc.insert("outcome".into(), outcome.into());
    (code, axum::Json(Value::Object(doc))).into_response()
}

fn error(code: StatusCode, text: impl std::fmt::Display) -> Response {
    document(code, "error", json!({ "error": text.to_string() }))
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such API path")
}

async fn auth(State(agent): State<Arc<Agent>>, request: Request, next: Next) -> Response {
    if let Some(token) = agent.token() {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .unwrap_or_default();
        if !bool::from(given.ct_eq(token.as_bytes())) {
            return error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
        }
    }
    next.run(request).await
}

/// Reads the store (read-only) on a blocking thread.
async fn read<T: Send + 'static>(
    agent: &Arc<Agent>,
    f: impl FnOnce(&Agent, &Store) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, Response> {
    let agent = agent.clone();
    tokio::task::spawn_blocking(move || {
        let store = Store::open_read_only(&agent.store_dir)?;
        f(&agent, &store)
    })
    .await
    .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))?
    .map_err(|e| {
        let code = if e.to_string().starts_with("no ") {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        error(code, e)
    })
}

async fn status(State(agent): State<Arc<Agent>>) -> Response {
    match read(&agent, |a, s| a.status(s)).await {
        Ok(doc) => document(StatusCode::OK, "ok", doc),
        Err(r) => r,
    }
}

async fn sources(State(agent): State<Arc<Agent>>) -> Response {
    match read(&agent, |a, s| a.status(s)).await {
        Ok(doc) => document(StatusCode::OK, "ok", json!({ "sources": doc["sources"] })),
        Err(r) => r,
    }
}

async fn targets(State(agent): State<Arc<Agent>>) -> Response {
    match read(&agent, |a, s| a.status(s)).await {
        Ok(doc) => document(StatusCode::OK, "ok", json!({ "targets": doc["targets"] })),
        Err(r) => r,
    }
}

async fn runs(State(agent): State<Arc<Agent>>, Path(name): Path<String>) -> Response {
    let target = name.clone();
    match read(&agent, move |_, s| {
        crate::status::runs(s, &target, Some(100))
    })
    .await
    {
        Ok(list) => document(
            StatusCode::OK,
            "ok",
            json!({
                "target": name,
                "runs": list.iter().map(crate::status::run_json).collect::<Vec<_>>(),
            }),
        ),
        Err(r) => r,
    }
}

/// Wakes a loop: 202, or 404 when the configuration declares no such
/// source or target, or 503 while stopping.
fn accepted(agent: &Agent, kind: &str, name: &str, why: u8) -> Response {
    if agent.is_stopping() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the agent is stopping");
    }
    if work::wake(agent, kind, name, why) {
        document(StatusCode::ACCEPTED, "accepted", json!({ kind: name }))
    } else {
        error(
            StatusCode::NOT_FOUND,
            format!(
                "no {kind} {} in the configuration",
                plumb_core::quote::quote(name.as_bytes())
            ),
        )
    }
}

async fn ingest(State(agent): State<Arc<Agent>>, Path(name): Path<String>) -> Response {
    accepted(&agent, "source", &name, 0)
}

async fn reconcile(State(agent): State<Arc<Agent>>, Path(name): Path<String>) -> Response {
    accepted(&agent, "target", &name, work::FORCE)
}

async fn healthz(State(agent): State<Arc<Agent>>) -> Response {
    if work::alive(&agent) {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "a loop stopped\n").into_response()
    }
}

async fn readyz(State(agent): State<Arc<Agent>>) -> Response {
    if agent.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not every source was read yet\n",
        )
            .into_response()
    }
}

/// OpenMetrics for a scraper that asks for it (Prometheus does), else
/// the classic text format (`promtool check metrics`, `curl`).
async fn metrics(State(agent): State<Arc<Agent>>, headers: axum::http::HeaderMap) -> Response {
    let open = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    if open {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            agent.metrics.encode(),
        )
            .into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            agent.metrics.encode_classic(),
        )
            .into_response()
    }
}
