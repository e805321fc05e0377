//! The admin API's endpoints: request in, JSON response out. Errors are classified here, once:
//! 400 invalid input, 404 unknown resource, 409 owned by the watched directory.

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use serde::Deserialize;
use serde_json::json;
use weft_api::Kind;
use weft_identity::SpiffeId;

use super::query::decode;
use super::{ApiRequest, FILES_CONTENT_TYPE};
use crate::config::{ApplyError, ApplyFile, DeleteError, ResourceKey};
use crate::describe::describe;
use crate::state::{ApplyFailure, ControlState, DeleteFailure};
use crate::tokens::TokenGrant;

pub(super) fn route(state: &ControlState, req: ApiRequest) -> Response<Full<Bytes>> {
    let segments: Vec<String> = req.path.trim_matches('/').split('/').map(decode).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (&req.method, segments.as_slice()) {
        (&Method::POST, ["api", "apply"]) => apply(state, &req),
        (&Method::GET, ["api", "resources"]) => list(state, &req),
        (&Method::DELETE, ["api", "resources", kind, namespace, name]) => {
            delete(state, kind, namespace, name)
        }
        (&Method::GET, ["api", "proxies"]) => ok(&json!({"proxies": state.proxies()})),
        (&Method::POST, ["api", "tokens"]) => create_token(state, &req),
        (&Method::GET, ["api", "describe"]) => describe_service(state, &req),
        (
            _,
            [
                "api",
                "apply" | "resources" | "proxies" | "tokens" | "describe",
                ..,
            ],
        ) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{} is not allowed on {}", req.method, req.path),
        ),
        _ => error(
            StatusCode::NOT_FOUND,
            &format!("no such endpoint: {}", req.path),
        ),
    }
}

#[derive(Deserialize)]
struct FilesBody {
    files: Vec<ApplyFile>,
}

fn apply(state: &ControlState, req: &ApiRequest) -> Response<Full<Bytes>> {
    let namespace = req
        .query
        .get("namespace")
        .unwrap_or(weft_api::resource::DEFAULT_NAMESPACE);
    let files = if req.content_type.starts_with(FILES_CONTENT_TYPE) {
        match serde_json::from_slice::<FilesBody>(&req.body) {
            Ok(body) => body.files,
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid files body: {e}")),
        }
    } else {
        let Ok(content) = String::from_utf8(req.body.to_vec()) else {
            return error(StatusCode::BAD_REQUEST, "the body is not UTF-8 text");
        };
        vec![ApplyFile {
            name: req.query.get("file").unwrap_or("<request>").to_string(),
            content,
        }]
    };
    match state.apply(&files, namespace) {
        Ok(plan) => {
            let resources: Vec<serde_json::Value> = plan
                .items
                .iter()
                .map(|i| {
                    json!({
                        "kind": i.resource.key.kind,
                        "namespace": i.resource.key.namespace,
                        "name": i.resource.key.name,
                        "action": i.action,
                    })
                })
                .collect();
            let warnings: Vec<String> = plan.warnings.iter().map(ToString::to_string).collect();
            for item in &plan.items {
                tracing::info!(key = %item.resource.key, action = item.action.as_str(), "applied");
            }
            ok(&json!({"resources": resources, "warnings": warnings}))
        }
        Err(ApplyFailure::Rejected(err @ ApplyError::Invalid(_))) => {
            let ApplyError::Invalid(diagnostics) = &err else {
                return error(StatusCode::BAD_REQUEST, &err.to_string());
            };
            let messages: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
            respond(
                StatusCode::BAD_REQUEST,
                &json!({"error": err.to_string(), "messages": messages, "diagnostics": diagnostics}),
            )
        }
        Err(ApplyFailure::Rejected(err @ ApplyError::Watched { .. })) => {
            error(StatusCode::CONFLICT, &err.to_string())
        }
        Err(ApplyFailure::Rejected(err @ ApplyError::Empty)) => {
            error(StatusCode::BAD_REQUEST, &err.to_string())
        }
        Err(err @ ApplyFailure::Persist(_)) => {
            tracing::error!(error = %err, "apply failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string())
        }
    }
}

fn parse_kind(name: &str) -> Result<Kind, Box<Response<Full<Bytes>>>> {
    Kind::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        Box::new(error(
            StatusCode::BAD_REQUEST,
            &format!("unknown kind {name:?}; known kinds: {}", known.join(", ")),
        ))
    })
}

fn list(state: &ControlState, req: &ApiRequest) -> Response<Full<Bytes>> {
    let kind = match req.query.get("kind").map(parse_kind).transpose() {
        Ok(k) => k,
        Err(response) => return *response,
    };
    let namespace = req.query.get("namespace");
    let name = req.query.get("name");
    let items: Vec<serde_json::Value> = state
        .config()
        .iter()
        .filter(|r| kind.is_none_or(|k| r.key.kind == k))
        .filter(|r| namespace.is_none_or(|ns| r.key.namespace == ns))
        .filter(|r| name.is_none_or(|n| r.key.name == n))
        .map(|r| json!({"source": r.source, "file": r.file(), "resource": r.json}))
        .collect();
    ok(&json!({"items": items}))
}

fn delete(state: &ControlState, kind: &str, namespace: &str, name: &str) -> Response<Full<Bytes>> {
    let kind = match parse_kind(kind) {
        Ok(k) => k,
        Err(response) => return *response,
    };
    let key = ResourceKey::new(kind, namespace, name);
    match state.delete(&key) {
        Ok(()) => {
            tracing::info!(%key, "deleted");
            ok(
                &json!({"deleted": {"kind": key.kind, "namespace": key.namespace, "name": key.name}}),
            )
        }
        Err(DeleteFailure::Rejected(err @ DeleteError::NotFound(_))) => {
            error(StatusCode::NOT_FOUND, &err.to_string())
        }
        Err(DeleteFailure::Rejected(err @ DeleteError::Watched { .. })) => {
            error(StatusCode::CONFLICT, &err.to_string())
        }
        Err(err @ DeleteFailure::Persist(_)) => {
            tracing::error!(error = %err, "delete failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string())
        }
    }
}

fn create_token(state: &ControlState, req: &ApiRequest) -> Response<Full<Bytes>> {
    let grant: TokenGrant = match serde_json::from_slice(&req.body) {
        Ok(g) => g,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("expected {{\"namespace\", \"serviceAccount\"}}: {e}"),
            );
        }
    };
    if let Err(e) = SpiffeId::new(
        &state.settings.trust_domain,
        &grant.namespace,
        &grant.service_account,
    ) {
        return error(StatusCode::BAD_REQUEST, &format!("invalid identity: {e}"));
    }
    match state.create_token(grant.clone()) {
        Ok(token) => {
            tracing::info!(namespace = %grant.namespace, service_account = %grant.service_account, "bootstrap token created");
            ok(&json!({
                "token": token,
                "namespace": grant.namespace,
                "serviceAccount": grant.service_account,
            }))
        }
        Err(e) => {
            tracing::error!(error = %e, "token creation failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
    }
}

fn describe_service(state: &ControlState, req: &ApiRequest) -> Response<Full<Bytes>> {
    let Some(service) = req.query.get("service") else {
        return error(StatusCode::BAD_REQUEST, "the service parameter is required");
    };
    let namespace = req
        .query
        .get("namespace")
        .unwrap_or(weft_api::resource::DEFAULT_NAMESPACE);
    let view = state.view();
    let registry = state.registry();
    ok(&describe(
        &view.resources,
        &registry,
        service,
        namespace,
        &state.settings.root_namespace,
    ))
}

fn ok(body: &serde_json::Value) -> Response<Full<Bytes>> {
    respond(StatusCode::OK, body)
}

pub(super) fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    respond(status, &json!({"error": message}))
}

fn respond(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let text = serde_json::to_string_pretty(body).unwrap_or_else(|_| "{}".to_string());
    let mut response = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
