#!/usr/bin/env bash
# End-to-end on a kind cluster: create the cluster, build and load the image, install the chart
# (with the bundled dev Postgres), apply examples/, wait for the Realms to be Ready, check the
# hub registry, delete the Realms and check the cleanup (Retain keeps the database, Delete drops
# it), then run the Rust e2e tests against the same cluster.
#
#   tests/e2e/kind.sh            # needs docker (or podman), kind, kubectl, helm
#   KEEP_CLUSTER=1 tests/e2e/kind.sh
#
# Only standard Kubernetes APIs are used after the cluster exists, so the checks also run on any
# cluster: set KIND=0 and KUBECONFIG (and IMAGE to an image the cluster can pull).
set -euo pipefail
cd "$(dirname "$0")/../.."

CLUSTER=${CLUSTER:-pek-e2e}
NS=${NS:-pek-system}
RELEASE=${RELEASE:-pek}
IMAGE=${IMAGE:-ghcr.io/schonherz/pek:e2e}
KIND=${KIND:-1}
FULL="$RELEASE-pek-hub"
ADMIN_SECRET="$FULL-postgres-admin"

# Asked to run, so a missing tool or cluster is a failure, not a skip.
need() { command -v "$1" >/dev/null 2>&1 || { echo "FAILED: $1 not found (needed for the kind e2e)" >&2; exit 1; }; }
need kubectl
need helm
if [ "$KIND" = 1 ]; then
  need kind
  need docker
  if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    kind create cluster --name "$CLUSTER" --wait 120s
  fi
  if [ "${KEEP_CLUSTER:-0}" != 1 ]; then
    trap 'kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true' EXIT
  fi
  docker build -t "$IMAGE" .
  kind load docker-image "$IMAGE" --name "$CLUSTER"
fi
kubectl version >/dev/null 2>&1 || { echo "FAILED: no Kubernetes cluster reachable (kubectl version failed)" >&2; exit 1; }

step() { echo; echo "== $*"; }
fail() { echo "FAILED: $*" >&2; kubectl -n "$NS" get all,realms,events 2>&1 | tail -60 >&2; exit 1; }

step "install the chart"
helm upgrade --install "$RELEASE" charts/pek-hub --namespace "$NS" --create-namespace \
  --set postgresql.enabled=true \
  --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" --set image.pullPolicy=IfNotPresent \
  --wait --timeout 5m
kubectl -n "$NS" rollout status "deploy/$FULL" --timeout=180s
kubectl -n "$NS" rollout status "deploy/$FULL-operator" --timeout=180s

step "apply examples/"
kubectl -n "$NS" apply -f examples/realm-kszk.yaml -f examples/realm-schonherz-qpa.yaml
for r in kszk qpa; do
  kubectl -n "$NS" wait "realm/$r" --for=condition=Ready --timeout=300s || fail "realm $r not Ready"
done
kubectl -n "$NS" get realms

step "the hub registry lists both realms"
TOKEN=$(kubectl -n "$NS" get secret "$FULL-operator-token" -o jsonpath='{.data.token}' | base64 -d)
registry() {
  kubectl -n "$NS" run "registry-$RANDOM" --rm -i --restart=Never --quiet --image=curlimages/curl:8.10.1 \
    --overrides='{"spec":{"securityContext":{"runAsNonRoot":true,"runAsUser":100}}}' -- \
    curl -fsS -H "Authorization: Bearer $TOKEN" "http://$FULL.$NS.svc:8080/internal/v1/realms"
}
REG=$(registry)
echo "$REG"
echo "$REG" | grep -q '"id":"kszk"' || fail "kszk not registered"
echo "$REG" | grep -q '"id":"schonherz-qpa"' || fail "schonherz-qpa not registered"

step "each realm has its database Secret, worker, Service and NetworkPolicy"
for r in kszk qpa; do
  kubectl -n "$NS" get "secret/$r-db" "deploy/$r-worker" "svc/$r-worker" "networkpolicy/$r-worker" >/dev/null \
    || fail "objects of $r missing"
done
kubectl -n "$NS" get pdb/qpa-worker >/dev/null || fail "qpa (2 replicas) has no PodDisruptionBudget"

psql_admin() {
  local uri
  uri=$(kubectl -n "$NS" get secret "$ADMIN_SECRET" -o jsonpath='{.data.uri}' | base64 -d)
  kubectl -n "$NS" exec "statefulset/$FULL-postgres" -- psql "$uri" -tAc "$1"
}
[ "$(psql_admin "SELECT count(*) FROM pg_database WHERE datname IN ('pek_kszk','pek_qpa')")" = 2 ] \
  || fail "realm databases missing"

step "delete the Realms: Retain keeps pek_kszk, Delete drops pek_qpa"
kubectl -n "$NS" delete realm kszk qpa --timeout=180s
REG=$(registry)
echo "$REG" | grep -q '"id":"kszk"' && fail "kszk still registered"
echo "$REG" | grep -q '"id":"schonherz-qpa"' && fail "schonherz-qpa still registered"
[ "$(psql_admin "SELECT count(*) FROM pg_database WHERE datname = 'pek_kszk'")" = 1 ] || fail "Retain dropped pek_kszk"
[ "$(psql_admin "SELECT count(*) FROM pg_database WHERE datname = 'pek_qpa'")" = 0 ] || fail "Delete kept pek_qpa"
[ "$(psql_admin "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'pek_qpa_%'")" = 0 ] || fail "Delete kept pek_qpa roles"
kubectl -n "$NS" wait deploy/kszk-worker --for=delete --timeout=120s || fail "kszk worker not garbage-collected"

step "Rust e2e suite against the same cluster"
# The suite installs its own release (pek-e2e) and runs the hub, Postgres and the operator as
# host processes (see tests/tests/e2e.rs); it reads only these variables.
PEK_E2E_REQUIRE=1 PEK_E2E_HELM="$(command -v helm)" \
  cargo test -p pek-tests --test e2e -- --nocapture

echo
echo "== e2e passed"
