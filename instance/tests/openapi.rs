//! `/openapi.json` tells the truth: every operation documents the error answers it can
//! give (with the error body schema), and real answers — successes and errors, basic and
//! full profiles — validate against the documented schemas. The walk calls every
//! operation of the hub and of a worker the ways a client gets it wrong (no token, a
//! stranger's token, an empty or malformed body, a malformed id) and checks each answer
//! against the document.

mod common;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use common::{hub, id, TestApp};
use pek::config::Mode;

/// A validator for `schema` (a fragment of `doc`, with `#/components/…` references).
fn validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "allOf": [schema],
    });
    jsonschema::validator_for(&root).unwrap_or_else(|e| panic!("schema {schema}: {e}"))
}

/// Checks one real answer against the operation's documented responses.
#[track_caller]
fn conforms(doc: &Value, path: &str, method: &str, what: &str, status: StatusCode, body: &Value) {
    let op = &doc["paths"][path][method];
    let code = status.as_u16().to_string();
    let documented: Vec<&String> = op["responses"]
        .as_object()
        .map(|r| r.keys().collect())
        .unwrap_or_default();
    assert!(
        !status.is_server_error(),
        "{method} {path} ({what}): server error {status}: {body}"
    );
    let Some(resp) = op["responses"].get(&code) else {
        panic!("{method} {path} ({what}): {status} is not documented (documented: {documented:?}): {body}");
    };
    let schema = &resp["content"]["application/json"]["schema"];
    if schema.is_null() || body.is_null() {
        return;
    }
    let v = validator(doc, schema);
    let errors: Vec<String> = v
        .iter_errors(body)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} ({what}): {status} answer does not match its schema: {errors:?}\n{body}"
    );
}

fn doc_of(mode: Mode) -> Value {
    serde_json::to_value(pek::http::openapi(mode)).expect("openapi json")
}

fn concrete(path: &str, realm: &str, id: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closing brace") + start;
        out.push_str(match &rest[start + 1..end] {
            "realm" => realm,
            "key" => "some-flag",
            _ => id,
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Every operation lists the error answers of its kind, each with the error body.
#[test]
fn every_operation_documents_its_error_answers() {
    for mode in [Mode::Hub, Mode::Worker] {
        let doc = doc_of(mode);
        let paths = doc["paths"].as_object().expect("paths");
        assert!(paths.len() > 20, "{mode:?}: {} paths", paths.len());
        for (path, item) in paths {
            for (method, op) in item.as_object().expect("path item") {
                let responses = op["responses"].as_object().expect("responses");
                let params = op["parameters"].as_array().cloned().unwrap_or_default();
                let public = pek::http::apidoc::is_public(path);
                let mut need: Vec<&str> = Vec::new();
                if !public {
                    need.extend(["401", "503"]);
                }
                if !params.is_empty() || op.get("requestBody").is_some() {
                    need.push("400");
                }
                if params.iter().any(|p| p["in"] == "path") {
                    need.push("404");
                }
                if op.get("requestBody").is_some() {
                    need.extend(["413", "422"]);
                }
                if path.starts_with("/api/v1/realms/{realm}") {
                    need.push("403");
                }
                if !public && method != "get" {
                    need.push("409");
                }
                for code in need {
                    assert!(
                        responses.contains_key(code),
                        "{mode:?} {method} {path}: {code} not documented ({:?})",
                        responses.keys().collect::<Vec<_>>()
                    );
                }
                for (code, resp) in responses {
                    if code.starts_with('4') || code == "503" && !path.starts_with("/readyz") {
                        assert_eq!(
                            resp["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/ErrorBody",
                            "{mode:?} {method} {path}: {code} without the error body"
                        );
                    }
                }
                if !public {
                    assert!(
                        op["security"].as_array().is_some_and(|s| !s.is_empty()),
                        "{mode:?} {method} {path}: no security requirement"
                    );
                }
            }
        }
    }
}

/// Calls every documented operation the ways clients get it wrong and checks each
/// answer against the document.
async fn walk(app: &TestApp, doc: &Value, realm: &str, god: Uuid, stranger: Uuid) {
    let god_t = app.token(god);
    let stranger_t = app.token(stranger);
    let paths = doc["paths"].as_object().expect("paths");
    let mut calls = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("item") {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let has_body = op.get("requestBody").is_some();
            let body = has_body.then(|| json!({}));
            let uri = concrete(path, realm, &Uuid::new_v4().to_string());
            for (what, token) in [
                ("no token", None),
                ("a stranger's token", Some(stranger_t.as_str())),
                ("GOD, empty body", Some(god_t.as_str())),
            ] {
                let (s, b) = app.call(m.clone(), &uri, token, body.clone()).await;
                conforms(doc, path, method, what, s, &b);
                calls += 1;
            }
            if path.contains("{id}") {
                let uri = concrete(path, realm, "not-a-uuid");
                let (s, b) = app.call(m.clone(), &uri, Some(&god_t), body.clone()).await;
                conforms(doc, path, method, "malformed id", s, &b);
                calls += 1;
            }
            if has_body {
                let (s, b) = app.call_raw(m.clone(), &uri, Some(&god_t), Some("{")).await;
                conforms(doc, path, method, "malformed JSON", s, &b);
                calls += 1;
            }
        }
    }
    assert!(calls > 100, "{calls} calls");
}

#[tokio::test]
async fn hub_answers_match_the_document() {
    let app = hub().await;
    let doc = doc_of(Mode::Hub);
    let (s, served) = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        served, doc,
        "/openapi.json is the document `pek openapi` prints"
    );

    let god = app.person("god", "God", "Mode", "+36 1 000 0000").await;
    let member = app.person("member", "Mem", "Ber", "+36 1 111 1111").await;
    let other = app.person("other", "Ot", "Her", "+36 1 222 2222").await;
    let stranger = app
        .person("stranger", "Str", "Anger", "+36 1 333 3333")
        .await;
    app.bootstrap_god(god).await;
    app.realm("alpha", god).await;
    let t = app.token(god);
    let group = id(&app.group("alpha", &t, "Kör", None).await);
    for who in [member, other] {
        app.join("alpha", &group, &t, who, &[], "ACTIVE").await;
    }

    // A full profile (one's own) and a basic one (a fellow member's) validate.
    let mt = app.token(member);
    let path = "/api/v1/users/{id}";
    let (s, full) = app.get(&format!("/api/v1/users/{member}"), &mt).await;
    assert_eq!(
        (s, full["scope"].as_str()),
        (StatusCode::OK, Some("full")),
        "{full}"
    );
    assert!(full["profile"]["cellPhone"].is_string(), "{full}");
    conforms(&doc, path, "get", "own full profile", s, &full);
    let (s, basic) = app.get(&format!("/api/v1/users/{other}"), &mt).await;
    assert_eq!(
        (s, basic["scope"].as_str()),
        (StatusCode::OK, Some("basic")),
        "{basic}"
    );
    conforms(&doc, path, "get", "basic profile", s, &basic);
    let (s, page) = app.get("/api/v1/users?q=er", &mt).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    conforms(&doc, "/api/v1/users", "get", "search", s, &page);
    let (s, list) = app
        .post(
            "/api/v1/users/lookup",
            &mt,
            json!({"ids": [member, other, stranger]}),
        )
        .await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2), "{list}");
    conforms(&doc, "/api/v1/users/lookup", "post", "lookup", s, &list);
    let (s, me) = app.get("/api/v1/me", &mt).await;
    conforms(&doc, "/api/v1/me", "get", "me", s, &me);
    let (s, groups) = app.get("/api/v1/groups?q=k", &mt).await;
    conforms(&doc, "/api/v1/groups", "get", "groups", s, &groups);

    walk(&app, &doc, "alpha", god, stranger).await;
}

#[tokio::test]
async fn worker_answers_match_the_document() {
    let w = common::app(Mode::Worker, Some("kszk")).await;
    let doc = doc_of(Mode::Worker);
    let (s, served) = w.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(served, doc);
    let god = Uuid::new_v4();
    let realm = pek::realm::RealmId::parse("kszk").expect("realm");
    pek::realm::ensure_local(&w.db, &realm, "KSZK", Some(god))
        .await
        .expect("god");
    let t = w.token(god);
    let g = w.group("kszk", &t, "Üzemeltetés", None).await;
    let (s, list) = w.get("/api/v1/realms/kszk/groups", &t).await;
    conforms(
        &doc,
        "/api/v1/realms/{realm}/groups",
        "get",
        "list",
        s,
        &list,
    );
    conforms(
        &doc,
        "/api/v1/realms/{realm}/groups",
        "post",
        "created",
        StatusCode::CREATED,
        &g,
    );
    walk(&w, &doc, "kszk", god, Uuid::new_v4()).await;
}
