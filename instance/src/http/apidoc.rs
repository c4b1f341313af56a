//! Makes `/openapi.json` true about failures: the handlers' annotations document their
//! success answers and the errors particular to them; this adds the error answers every
//! operation of a kind can give, each with the [`ErrorBody`](crate::error::ErrorBody)
//! schema, and the bearer-token security schemes. Applied to the document `pek openapi`
//! prints and the one `/openapi.json` serves.
//!
//! The rules follow what the extractors and the error mapping do:
//! - every operation that takes a token: 401 (missing / invalid token) and 503 (the
//!   database or a realm is unavailable);
//! - any path or query parameter or a request body: 400 (malformed value, bad text);
//! - a path parameter: 404 (no such object, not visible to the caller, or a realm this
//!   instance does not serve);
//! - a request body: 413 (too large) and 422 (well-formed JSON, invalid content);
//! - realm-scoped operations (`/api/v1/realms/{realm}/…`): 403 (policy says no);
//! - writes (POST, PUT, PATCH, DELETE) that take a token: 409 (duplicate, state that
//!   does not allow it, or a concurrent update — retry);
//! - writes under `/api/`: 403 (besides the policies: a write authenticated by the
//!   session cookie without the CSRF token or from another origin, see `guard.rs`);
//! - writes and operations with a body: 415 (a body that is not JSON).

use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

/// Paths answered without a token.
pub fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/metrics" | "/openapi.json" | "/.well-known/jwks.json"
    ) || path.starts_with("/auth/")
}

/// Operator routes take the operator token instead of a user's.
fn is_operator(path: &str) -> bool {
    path.starts_with("/internal/") && !is_realm_report(path)
}

/// Worker → hub membership reports, and the hub's call for a realm's part of a merge of
/// two people, take the realm's hub token.
fn is_realm_report(path: &str) -> bool {
    path.starts_with("/internal/")
        && (path.ends_with("/members") || path.ends_with("/people/merge"))
}

fn description(code: u16) -> &'static str {
    match code {
        400 => "Malformed request: a path, query or body value is invalid (bad text, bad id, bad cursor…).",
        401 => "Missing, expired or invalid token.",
        403 => "Not allowed: the realm's policies say no, or a write authenticated by the session cookie lacks the CSRF token (`x-csrf-token`, from GET /auth/csrf) or comes from another origin.",
        415 => "The request body is not JSON: send `Content-Type: application/json` (or no body).",
        404 => "Not found, not visible to the caller, or a realm this instance does not serve.",
        409 => "Conflict: a duplicate, a state that does not allow this, or a concurrent update (retry).",
        413 => "Request body too large.",
        422 => "Well-formed request whose content is invalid.",
        503 => "Temporarily unavailable (database busy or a realm unreachable); retry.",
        _ => "Error.",
    }
}

/// The error answers an operation can give, by the rules in the module docs.
pub fn expected_errors(path: &str, method: &str, op: &Operation) -> Vec<u16> {
    let mut codes = Vec::new();
    let params = op.parameters.as_deref().unwrap_or_default();
    let has_path_param = params
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Path));
    let has_body = op.request_body.is_some();
    let authenticated = !is_public(path);
    if !params.is_empty() || has_body {
        codes.push(400);
    }
    if authenticated {
        codes.extend([401, 503]);
    }
    let write = matches!(method, "post" | "put" | "patch" | "delete");
    if path.starts_with("/api/v1/realms/{realm}") || (write && path.starts_with("/api/")) {
        codes.push(403);
    }
    if has_path_param {
        codes.push(404);
    }
    if authenticated && write {
        codes.push(409);
    }
    if has_body {
        codes.extend([413, 422]);
    }
    if has_body || write {
        codes.push(415);
    }
    codes.sort_unstable();
    codes
}

fn operations(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    let PathItem {
        get,
        put,
        post,
        delete,
        options,
        head,
        patch,
        trace,
        ..
    } = item;
    [
        ("get", get),
        ("put", put),
        ("post", post),
        ("delete", delete),
        ("options", options),
        ("head", head),
        ("patch", patch),
        ("trace", trace),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_mut().map(|op| (m, op)))
    .collect()
}

/// Text path segments with a fixed shape: the document says which values can exist
/// (the realm id rule of `RealmId::parse`, the Realm CRD's, the feature flag key rule).
fn path_param_schema(name: &str) -> Option<RefOr<Schema>> {
    let (pattern, min, max) = match name {
        "realm" => (pek_realm_id::REALM_ID_PATTERN, 2, 63),
        "key" => (r"^[a-z][a-z0-9_.-]*$", 1, 100),
        _ => return None,
    };
    Some(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(pattern))
            .min_length(Some(min))
            .max_length(Some(max))
            .into(),
    )
}

/// Adds the error answers and security schemes (idempotent).
pub fn complete(doc: &mut OpenApi) {
    let error_body = || {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build()
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, op) in operations(item) {
            for p in op.parameters.iter_mut().flatten() {
                if matches!(p.parameter_in, ParameterIn::Path) {
                    if let Some(schema) = path_param_schema(&p.name) {
                        p.schema = Some(schema);
                    }
                }
            }
            for code in expected_errors(path, method, op) {
                op.responses
                    .responses
                    .entry(code.to_string())
                    .or_insert_with(|| {
                        RefOr::T(
                            ResponseBuilder::new()
                                .description(description(code))
                                .content("application/json", error_body())
                                .build(),
                        )
                    });
            }
            let scheme = if is_public(path) {
                None
            } else if is_operator(path) {
                Some("operatorToken")
            } else if is_realm_report(path) {
                Some("realmToken")
            } else {
                Some("bearerToken")
            };
            if let Some(scheme) = scheme {
                op.security = Some(vec![SecurityRequirement::new::<_, [&str; 0], &str>(
                    scheme,
                    [],
                )]);
            }
        }
    }
    let components = doc.components.get_or_insert_with(Default::default);
    let bearer = |what: &str| {
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(what.to_string()))
                .build(),
        )
    };
    components.add_security_scheme(
        "bearerToken",
        bearer(
            "A hub-issued JWT (login) in `Authorization: Bearer …` or the session cookie \
             `pek_session`. A write (POST, PUT, PATCH, DELETE) under `/api/` authenticated by \
             the cookie alone must also send the CSRF token as `x-csrf-token` (from \
             `GET /auth/csrf`) and come from this origin (`Sec-Fetch-Site: same-origin`, or an \
             `Origin` naming this host).",
        ),
    );
    components.add_security_scheme(
        "operatorToken",
        bearer("One of the hub's operator tokens (PEK_OPERATOR_TOKEN_FILE)."),
    );
    components.add_security_scheme(
        "realmToken",
        bearer("The realm's hub token, derived from the federation secret."),
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn realm_pattern_is_the_realm_id_rule() {
        let schema = serde_json::to_value(super::path_param_schema("realm")).expect("json");
        let v = jsonschema::validator_for(&schema).expect("schema");
        for s in [
            "hub", "kir-dev", "a1", "ab", "a", "Hub", "1abc", "ab-", "a_b", "a b", "a--b", "",
        ] {
            assert_eq!(
                v.is_valid(&serde_json::json!(s)),
                crate::realm::RealmId::parse(s).is_ok(),
                "{s:?}"
            );
        }
        let long = "a".repeat(64);
        assert!(!v.is_valid(&serde_json::json!(long)));
    }
}
