#!/usr/bin/env bash
# Builds the test control plane (nodewright-testenv), kubectl and helm from the Go module proxy, once.
# The binaries go to testenv/bin (git-ignored). A stamp of the inputs makes a second call a no-op;
# with warm module and build caches a rebuild takes seconds. Safe to call from parallel processes.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin="$here/bin"
mkdir -p "$bin"

exec 9>"$bin/.build.lock"
flock 9

# `build.sh node` builds instead the node of the real single-node cluster (scripts/test-cluster):
# kubelet, kube-controller-manager and kube-scheduler in one binary (node/main.go), from the same
# module and replace block as the control plane, with the same flags so that the compiled
# Kubernetes packages are shared. Only that test needs it, so the plain call does not build it.
version_ldflags() {
  local k8s minor pkg
  k8s=$(go -C "$here" list -m -f '{{.Version}}' k8s.io/kubernetes)
  minor=$(echo "$k8s" | cut -d. -f2)
  pkg=k8s.io/component-base/version
  echo "-X $pkg.gitVersion=$k8s -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
}
if [[ ${1:-} == node ]]; then
  stamp=$(cat "$here/go.mod" "$here/go.sum" "$here"/node/*.go "$here/build.sh" | sha256sum | cut -d' ' -f1)
  if [[ -x "$bin/nodewright-node" && "$(cat "$bin/.stamp-node" 2>/dev/null)" == "$stamp" ]]; then
    exit 0
  fi
  start=$SECONDS
  echo "testenv: building kubelet, kube-controller-manager and kube-scheduler (nodewright-node)" \
    "from Go modules (about 6 minutes on 2 cores after the control plane's build)" >&2
  CGO_ENABLED=0 go -C "$here" build -buildvcs=false -trimpath -ldflags="$(version_ldflags)" \
    -o "$bin/nodewright-node.new" ./node
  mv "$bin/nodewright-node.new" "$bin/nodewright-node"
  echo "$stamp" >"$bin/.stamp-node"
  echo "testenv: nodewright-node built in $((SECONDS - start))s" >&2
  exit 0
fi

stamp=$(cat "$here/go.mod" "$here/go.sum" "$here"/*.go "$here/helm/go.mod" "$here/helm/go.sum" "$here/build.sh" |
  sha256sum | cut -d' ' -f1)
if [[ -x "$bin/nodewright-testenv" && -x "$bin/kubectl" && -x "$bin/helm" &&
  "$(cat "$bin/.stamp" 2>/dev/null)" == "$stamp" ]]; then
  exit 0
fi

cd "$here"
start=$SECONDS
# A cold build is minutes of silence from go; say which of the three programs is being built and
# how long it has taken so far.
say() { echo "testenv: $*" >&2; }
say "building kube-apiserver + etcd (nodewright-testenv), kubectl and helm from Go modules" \
  "(the first build downloads the modules and compiles Kubernetes: about 5 minutes on 2 cores)"
# -trimpath keeps machine paths out of the binaries; CGO is not needed by any of the programs.
export CGO_ENABLED=0
# Stamp the Kubernetes version into both binaries, as the release build does, so that
# `kubectl version` and the server's /version report it.
ldflags=$(version_ldflags)
say "[1/3] nodewright-testenv (kube-apiserver + etcd), the longest step"
go build -buildvcs=false -trimpath -ldflags="$ldflags" -o "$bin/nodewright-testenv.new" .
say "[2/3] kubectl ($((SECONDS - start))s so far; it shares most packages with the first)"
go build -buildvcs=false -trimpath -ldflags="$ldflags" -o "$bin/kubectl.new" k8s.io/kubernetes/cmd/kubectl

# helm is its own module (helm/go.mod) so that its client-go need not match the control plane's.
# As helm's Makefile does: stamp its version, and the Kubernetes version its client libraries speak,
# which `helm template` and `helm lint` assume for the cluster (the default, 1.20, fails the chart's
# kubeVersion constraint).
helm=$(go -C helm list -m -f '{{.Version}}' helm.sh/helm/v3)
client=$(go -C helm list -m -f '{{.Version}}' k8s.io/client-go) # v0.MINOR.PATCH
client_minor=$(echo "$client" | cut -d. -f2)
hpkg=helm.sh/helm/v3
hldflags="-X $hpkg/internal/version.version=$helm -X $hpkg/internal/version.gitTreeState=clean"
for p in pkg/chartutil pkg/lint/rules; do
  hldflags="$hldflags -X $hpkg/$p.k8sVersionMajor=1 -X $hpkg/$p.k8sVersionMinor=$client_minor"
done
say "[3/3] helm ($((SECONDS - start))s so far)"
go -C helm build -buildvcs=false -trimpath -ldflags="$hldflags" -o "$bin/helm.new" helm.sh/helm/v3/cmd/helm

mv "$bin/nodewright-testenv.new" "$bin/nodewright-testenv"
mv "$bin/kubectl.new" "$bin/kubectl"
mv "$bin/helm.new" "$bin/helm"
echo "$stamp" >"$bin/.stamp"
say "built in $((SECONDS - start))s"
