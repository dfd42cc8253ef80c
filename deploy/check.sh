#!/usr/bin/env bash
# Validates deploy/ offline (make deploy-check): lints the Dockerfile with hadolint, renders the
# kustomize base and the example overlay, and validates every rendered resource against the
# Kubernetes JSON schemas bundled in kubernetes-validate (strict: unknown fields are errors).
# Needs the tools of deploy/requirements.txt on PATH (the Makefile puts its venv first).
set -euo pipefail
cd "$(dirname "$0")"
K8S_VERSION="${K8S_VERSION:-1.33.0}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

echo "== hadolint deploy/Dockerfile"
hadolint Dockerfile

echo "== the validator rejects a broken manifest (self-test)"
cat > "$out/broken.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken}
spec:
  replicas: "three"
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers: [{name: c, image: i, unknownField: 1}]
YAML
if kubernetes-validate --strict --quiet -k "$K8S_VERSION" "$out/broken.yaml" >/dev/null 2>&1; then
  echo "kubernetes-validate accepted a broken manifest: the check would prove nothing" >&2
  exit 1
fi

render() { # render <kustomization dir> <output file>
  if command -v kubectl >/dev/null 2>&1; then
    kubectl kustomize "$1" > "$2"
  else
    # No kubectl: validate the plain resources each kustomization lists (generated ConfigMaps and
    # Secrets, and patches, are then not checked).
    echo "   (kubectl not found: validating the listed resource files of $1 one by one)"
    python3 - "$1" > "$2" <<'PY'
import os, sys, yaml
def files(d):
    k = yaml.safe_load(open(os.path.join(d, "kustomization.yaml")))
    for r in k.get("resources", []):
        p = os.path.normpath(os.path.join(d, r))
        if os.path.isdir(p):
            yield from files(p)
        else:
            yield p
for f in files(sys.argv[1]):
    sys.stdout.write(open(f).read().rstrip() + "\n---\n")
PY
  fi
}

for dir in k8s/base k8s/overlays/example; do
  name="${dir//\//-}"
  echo "== $dir (Kubernetes $K8S_VERSION schemas, strict)"
  render "$dir" "$out/$name.yaml"
  kubernetes-validate --strict --quiet -k "$K8S_VERSION" "$out/$name.yaml"
  echo "   $(grep -c '^kind:' "$out/$name.yaml") resources valid"
done

echo "== the drain fits the termination grace period"
python3 - <<'PY'
import re, yaml
dep = yaml.safe_load(open("k8s/base/deployment.yaml"))
spec = dep["spec"]["template"]["spec"]
grace = spec["terminationGracePeriodSeconds"]
pre = spec["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
toml = open("k8s/base/livegate.toml").read()
window = int(re.search(r'^drain_window\s*=\s*"(\d+)s"', toml, re.M).group(1))
task_grace = 5
need = pre + window + task_grace
assert grace >= need, f"terminationGracePeriodSeconds {grace} < preStop {pre} + drain {window} + {task_grace}"
print(f"   preStop {pre}s + drain_window {window}s + task grace {task_grace}s = {need}s <= {grace}s")
PY
echo "deploy-check: ok"
