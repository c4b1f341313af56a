//! The CRD schema: generated YAML matches the checked-in file, descriptions everywhere, and the
//! CEL rules (realm id well-formed, not reserved, immutable; database name immutable) behave as
//! the apiserver will evaluate them (kube's client-side CEL validator on the generated schema).

use pek_crds::{crd, crd_yaml, is_valid_realm_id, Realm};
use serde_json::{json, Value};

fn workspace_file(rel: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn checked_in_crd_yaml_matches_the_types() {
    let expected = crd_yaml();
    assert!(
        workspace_file("crds/realm.yaml") == expected,
        "crds/realm.yaml drifted from the Rust types; regenerate it with \
         `cargo run -q -p pek-operator -- crd > crds/realm.yaml` (and copy it to charts/pek-hub/crds/)"
    );
}

#[test]
fn chart_ships_the_same_crd() {
    assert!(
        workspace_file("charts/pek-hub/crds/realm.yaml") == workspace_file("crds/realm.yaml"),
        "charts/pek-hub/crds/realm.yaml differs from crds/realm.yaml; copy it over"
    );
}

fn schema() -> Value {
    let crd = crd();
    serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("schema"),
    )
    .expect("schema json")
}

fn every_property_has_a_description(path: &str, schema: &Value, missing: &mut Vec<String>) {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            let p = format!("{path}.{name}");
            if sub
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                missing.push(p.clone());
            }
            every_property_has_a_description(&p, sub, missing);
        }
    }
    if let Some(items) = schema.get("items") {
        every_property_has_a_description(&format!("{path}[]"), items, missing);
    }
}

#[test]
fn every_field_is_described_for_kubectl_explain() {
    let mut missing = Vec::new();
    every_property_has_a_description("realm", &schema(), &mut missing);
    assert!(
        missing.is_empty(),
        "fields without description: {missing:?}"
    );
}

#[test]
fn printer_columns_short_name_and_defaults() {
    let crd = crd();
    let names: Vec<_> = crd.spec.versions[0]
        .additional_printer_columns
        .as_ref()
        .expect("printer columns")
        .iter()
        .filter(|c| c.priority.unwrap_or(0) == 0)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["Realm", "Ready", "Endpoint", "Deletion", "Age"]);
    assert_eq!(crd.spec.names.short_names, Some(vec!["rlm".to_string()]));
    let s = schema();
    let spec = &s["properties"]["spec"]["properties"];
    assert_eq!(
        spec["database"]["properties"]["deletionPolicy"]["default"],
        "Retain"
    );
    assert_eq!(spec["worker"]["properties"]["replicas"]["default"], 1);
    assert_eq!(spec["worker"]["default"]["replicas"], 1);
    assert_eq!(spec["suspend"]["default"], false);
}

fn realm(id: &str, db_name: Option<&str>) -> Value {
    let mut database = json!({"adminSecretRef": {"name": "pg-admin"}});
    if let Some(n) = db_name {
        database["name"] = json!(n);
    }
    json!({
        "apiVersion": "pek.sch.bme.hu/v1alpha1",
        "kind": "Realm",
        "metadata": {"name": "r", "namespace": "default"},
        "spec": {"realmId": id, "database": database}
    })
}

fn cel(obj: &Value, old: Option<&Value>) -> Result<(), String> {
    kube::core::cel::Validator::new()
        .validate(&schema(), obj, old)
        .map_err(|e| e.to_string())
}

#[test]
fn cel_accepts_well_formed_realm_ids() {
    for id in ["kszk", "sch-pincer", "a1", &format!("a{}", "b".repeat(62))] {
        assert!(is_valid_realm_id(id), "{id}");
        cel(&realm(id, None), None).unwrap_or_else(|e| panic!("{id} rejected: {e}"));
    }
}

#[test]
fn cel_rejects_malformed_and_reserved_realm_ids() {
    for id in ["Kszk", "1abc", "abc-", "a_b", "a.b", "hub", "x"] {
        assert!(!is_valid_realm_id(id), "{id}");
        let err = cel(&realm(id, None), None).expect_err(id);
        assert!(err.contains("realmId"), "{id}: {err}");
    }
    let err = cel(&realm("hub", None), None).unwrap_err();
    assert!(err.contains("reserved"), "{err}");
}

#[test]
fn cel_makes_realm_id_and_database_name_immutable() {
    let old = realm("kszk", Some("pek_kszk"));
    cel(&realm("kszk", Some("pek_kszk")), Some(&old)).expect("unchanged update is fine");
    let err = cel(&realm("kszk2", Some("pek_kszk")), Some(&old)).unwrap_err();
    assert!(err.contains("realmId is immutable"), "{err}");
    let err = cel(&realm("kszk", Some("other")), Some(&old)).unwrap_err();
    assert!(err.contains("database.name is immutable"), "{err}");
    let err = cel(&realm("kszk", None), Some(&old)).unwrap_err();
    assert!(err.contains("database.name is immutable"), "{err}");
    let err = cel(&realm("kszk", Some("Bad-Name")), None).unwrap_err();
    assert!(err.contains("database.name must be"), "{err}");
}

#[test]
fn spec_round_trips_with_defaults() {
    let r: Realm = serde_json::from_value(realm("kszk", None)).expect("parse");
    assert_eq!(r.spec.worker.replicas, 1);
    assert_eq!(
        r.spec.database.deletion_policy,
        pek_crds::DeletionPolicy::Retain
    );
    assert!(!r.spec.suspend);
    assert_eq!(r.display_name(), "kszk");
}

#[test]
fn examples_are_valid_realms() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("examples/") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let value: Value = serde_yaml::from_str(&text).expect("yaml");
        if value["kind"] != "Realm" {
            continue;
        }
        let realm: Realm = serde_json::from_value(value.clone())
            .unwrap_or_else(|e| panic!("{}: not a Realm: {e}", path.display()));
        assert!(
            is_valid_realm_id(&realm.spec.realm_id),
            "{}",
            path.display()
        );
        cel(&value, None).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        seen += 1;
    }
    assert!(seen >= 2, "expected Realm examples in examples/");
}

#[test]
fn descriptions_are_unwrapped_into_paragraphs() {
    fn walk(path: &str, v: &Value, ragged: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(d)) = m.get("description") {
                    // Every line break separates paragraphs (a blank line), never a wrapped line.
                    if d.replace("\n\n", "").contains('\n') {
                        ragged.push(format!("{path}: {d:?}"));
                    }
                }
                for (k, sub) in m {
                    walk(&format!("{path}.{k}"), sub, ragged);
                }
            }
            Value::Array(a) => a.iter().for_each(|sub| walk(path, sub, ragged)),
            _ => {}
        }
    }
    let mut ragged = Vec::new();
    walk("schema", &schema(), &mut ragged);
    assert!(
        ragged.is_empty(),
        "descriptions with hard line breaks: {ragged:#?}"
    );
    let s = schema();
    let realm_id = s["properties"]["spec"]["properties"]["realmId"]["description"]
        .as_str()
        .expect("realmId description");
    assert!(
        realm_id.contains("starting with a letter and ending"),
        "{realm_id}"
    );
    assert_eq!(pek_crds::unwrap_paragraphs("a\nb\n\nc\n d"), "a b\n\nc d");
}

#[test]
fn worker_resources_do_not_offer_dra_claims() {
    let s = schema();
    let resources = &s["properties"]["spec"]["properties"]["worker"]["properties"]["resources"];
    assert!(resources["properties"]["limits"].is_object(), "{resources}");
    assert!(
        resources["properties"].get("claims").is_none(),
        "{resources}"
    );
}

#[test]
fn admins_are_bounded_authsch_ids() {
    let mut r = realm("kszk", None);
    r["spec"]["admins"] = json!(["abc-123", "7f3e"]);
    cel(&r, None).expect("plain ids are fine");
    let parsed: Realm = serde_json::from_value(r.clone()).expect("parse");
    assert_eq!(parsed.spec.admins, ["abc-123", "7f3e"]);
    r["spec"]["admins"] = json!(["a,b"]);
    let err = cel(&r, None).expect_err("comma");
    assert!(err.contains("admins must be AuthSCH ids"), "{err}");
    r["spec"]["admins"] = json!(["a b"]);
    assert!(cel(&r, None).is_err(), "whitespace");
    let s = schema();
    let admins = &s["properties"]["spec"]["properties"]["admins"];
    assert_eq!(admins["maxItems"], 64);
    assert_eq!(admins["items"]["minLength"], 1);
    assert_eq!(admins["items"]["maxLength"], 128);
    assert_eq!(admins["x-kubernetes-list-type"], "set");
}

/// The realm id rule is written once: the CEL rule on `spec.realmId` is built from
/// `REALM_ID_PATTERN`, and `is_valid_realm_id` (which the operator checks and whose
/// well-formedness half the instance parses API paths with) accepts exactly what the
/// apiserver's CEL accepts — over every id of up to three characters from an alphabet
/// with each kind of character, and at the length limits.
#[test]
fn the_realm_id_rule_is_the_same_in_cel_and_in_rust() {
    let s = schema();
    let rules: Vec<&str> = s["properties"]["spec"]["properties"]["realmId"]
        ["x-kubernetes-validations"]
        .as_array()
        .expect("realmId CEL rules")
        .iter()
        .filter_map(|r| r["rule"].as_str())
        .collect();
    assert!(
        rules.contains(&format!("self.matches('{}')", pek_crds::REALM_ID_PATTERN).as_str()),
        "the CEL rule is not REALM_ID_PATTERN: {rules:?}"
    );
    let alphabet = ['a', 'z', '0', '9', '-', 'A', '_', 'é'];
    let mut ids: Vec<String> = Vec::new();
    for a in alphabet {
        ids.push(a.to_string());
        for b in alphabet {
            ids.push(format!("{a}{b}"));
            for c in alphabet {
                ids.push(format!("{a}{b}{c}"));
            }
        }
    }
    for len in [62, 63, 64] {
        ids.push(format!("a{}", "b".repeat(len - 1)));
        ids.push(format!("a{}-", "b".repeat(len - 2)));
    }
    ids.extend(["hub", "hub1", "kszk", "sch-pincer", "a--b"].map(String::from));
    for id in &ids {
        let cel_ok = cel(&realm(id, None), None).is_ok();
        assert_eq!(
            pek_crds::is_valid_realm_id(id),
            cel_ok,
            "{id:?}: Rust and CEL disagree"
        );
        assert_eq!(
            pek_crds::is_well_formed_realm_id(id),
            cel_ok || id == pek_crds::RESERVED_REALM_ID,
            "{id:?}: well-formedness disagrees with CEL"
        );
    }
}
