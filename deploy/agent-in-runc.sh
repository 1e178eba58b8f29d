#!/usr/bin/env bash
# Runs the node agent as the chart's DaemonSet specifies it, in a real container runtime (runc),
# on this node: the rendered pod's capabilities, no_new_privs, read-only root, hostPID, a private
# cgroup namespace as containerd gives pods, the hostPath mounts with their read-only flags, and
# no seccomp profile. A second container, in a cgroup named like a Kubernetes pod's, reads its
# /etc/shadow; the agent must detect it and attribute it to that container.
# With CONTAINERD_SOCKET, the agent also mounts that socket read-only (as agent.containerdSocket)
# and must reach containerd through it.
# Needs root, runc, busybox and the tools of scripts/install-deploy-tools.sh.
#
#   deploy/agent-in-runc.sh [PALISADE_BINARY]
#   CONTAINERD_SOCKET=/run/containerd/containerd.sock deploy/agent-in-runc.sh
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
binary="${1:-$here/target/x86_64-unknown-linux-gnu/release/palisade}"
tools="${PALISADE_DEPLOY_TOOLS:-$here/target/deploy-tools}"
fail() { echo "agent-in-runc: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "run as root"
[ -x "$binary" ] || fail "no binary at $binary (deploy/images/build.sh --binary-only builds a static one)"
for tool in runc busybox; do command -v "$tool" >/dev/null || fail "$tool is missing"; done
[ -x "$tools/bin/helm" ] || fail "helm is missing: scripts/install-deploy-tools.sh"

work=$(mktemp -d)
suffix=$$
agent_id="palisade-agent-$suffix"
workload_id="workload-$suffix"
container_hex=$(printf 'palisade-probe-%s' "$suffix" | sha256sum | cut -c1-64)
pod_cgroup="/kubepods/besteffort/pod00000000-0000-0000-0000-$(printf '%012d' "$suffix")"
cleanup() {
  runc kill "$agent_id" KILL 2>/dev/null || true
  runc delete --force "$agent_id" 2>/dev/null || true
  runc delete --force "$workload_id" 2>/dev/null || true
  for hierarchy in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    rmdir "$hierarchy${pod_cgroup#/}/$container_hex" "$hierarchy${pod_cgroup#/}" 2>/dev/null || true
    rmdir "${hierarchy}kubepods/besteffort" "${hierarchy}kubepods" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# The DaemonSet as a release renders it, with alerts on stdout.
socket="${CONTAINERD_SOCKET:-}"
[ -z "$socket" ] || [ -S "$socket" ] || fail "CONTAINERD_SOCKET=$socket is not a socket"
"$tools/bin/helm" template probe "$here/deploy/helm/palisade" --show-only templates/agent.yaml \
  --set agent.stdout=true --set "agent.containerdSocket=$socket" --set agent.sensor=ebpf >"$work/agent.yaml"

mkdir -p "$work/agent/rootfs/usr/bin" "$work/spool"
cp "$binary" "$work/agent/rootfs/usr/bin/palisade"
(cd "$work/agent" && runc spec)
"$tools/venv/bin/python3" - "$work/agent.yaml" "$work/agent/config.json" "$work/spool" <<'PY'
import json, sys, yaml
daemonset = next(doc for doc in yaml.safe_load_all(open(sys.argv[1])) if doc)
pod = daemonset["spec"]["template"]["spec"]
container = pod["containers"][0]
context = container["securityContext"]
config = json.load(open(sys.argv[2]))
process = config["process"]
process["terminal"] = False
# The rendered args, without the gateway (alerts go to stdout here).
process["args"] = ["/usr/bin/palisade", "--log-format", "json"] + [
    arg.replace("$(NODE_NAME)", "probe") for arg in container["args"] if not arg.startswith("--server")
]
process["user"] = {"uid": pod["securityContext"]["runAsUser"], "gid": pod["securityContext"]["runAsGroup"]}
process["noNewPrivileges"] = context["allowPrivilegeEscalation"] is False
assert context["capabilities"]["drop"] == ["ALL"]
capabilities = ["CAP_" + name for name in context["capabilities"]["add"]]
process["capabilities"] = {kind: capabilities for kind in ("bounding", "effective", "permitted")}
process["env"] = ["PATH=/usr/bin"]
config["root"] = {"path": "rootfs", "readonly": context["readOnlyRootFilesystem"]}
namespaces = [ns for ns in config["linux"]["namespaces"] if not (ns["type"] == "pid" and pod.get("hostPID"))]
config["linux"]["namespaces"] = namespaces + [{"type": "cgroup"}]
assert pod["securityContext"]["seccompProfile"]["type"] == "Unconfined"
config["linux"].pop("seccomp", None)
volumes = {volume["name"]: volume for volume in pod["volumes"]}
for mount in container["volumeMounts"]:
    volume = volumes[mount["name"]]
    if "hostPath" in volume:
        # The spool's node directory becomes a scratch directory; the rest are the node's own.
        source = sys.argv[3] if not mount.get("readOnly") else volume["hostPath"]["path"]
        options = ["rbind", "nosuid", "nodev"] + (["ro"] if mount.get("readOnly") else ["rw"])
        config["mounts"].append({"destination": mount["mountPath"], "type": "bind", "source": source, "options": options})
    elif "emptyDir" in volume:
        config["mounts"].append({"destination": mount["mountPath"], "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "size=65536k"]})
    else:
        raise SystemExit(f"volume {mount['name']} is neither hostPath nor emptyDir")
json.dump(config, open(sys.argv[2], "w"), indent=1)
print("agent:", " ".join(process["args"][1:]))
print("capabilities:", ",".join(capabilities), "| no_new_privs:", process["noNewPrivileges"],
      "| read-only root:", config["root"]["readonly"], "| hostPID:", pod.get("hostPID", False))
PY

# The workload: busybox in a pod-like cgroup, reading its own /etc/shadow twice.
mkdir -p "$work/workload/rootfs/bin" "$work/workload/rootfs/etc"
cp "$(command -v busybox)" "$work/workload/rootfs/bin/busybox"
echo 'root:*:19000:0:99999:7:::' >"$work/workload/rootfs/etc/shadow"
(cd "$work/workload" && runc spec)
python3 - "$work/workload/config.json" "$pod_cgroup/$container_hex" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["process"]["terminal"] = False
config["process"]["args"] = ["/bin/busybox", "sh", "-c", "sleep 1; /bin/busybox cat /etc/shadow >/dev/null; sleep 1; /bin/busybox cat /etc/shadow >/dev/null"]
config["root"] = {"path": "rootfs", "readonly": True}
config["linux"]["cgroupsPath"] = sys.argv[2]
json.dump(config, open(sys.argv[1], "w"), indent=1)
PY

runc run --detach --bundle "$work/agent" "$agent_id" >"$work/alerts.json" 2>"$work/agent.log" </dev/null
for _ in $(seq 1 100); do
  grep -q 'sensor started' "$work/agent.log" && break
  grep -q 'palisade: error' "$work/agent.log" && break
  sleep 0.1
done
grep -q '"sensor":"ebpf"' "$work/agent.log" || fail "the eBPF sensor did not start in the container: $(tail -n 3 "$work/agent.log")"
echo "in the container the eBPF sensor started"
if [ -n "$socket" ]; then
  grep -q 'container metadata from containerd' "$work/agent.log" \
    || fail "containerd not reached through the read-only socket mount: $(grep -i containerd "$work/agent.log" | tail -n 2)"
  echo "containerd reached through the read-only mount of $socket"
fi
runc run --bundle "$work/workload" "$workload_id" </dev/null
sleep 3
runc kill "$agent_id" TERM
for _ in $(seq 1 50); do runc state "$agent_id" 2>/dev/null | grep -q '"status": "stopped"' && break; sleep 0.1; done

short_id=${container_hex:0:12}
detected=$(grep -c "\"container.id\":\"$short_id\".*Shadow password file read\|Shadow password file read.*\"container.id\":\"$short_id\"" "$work/alerts.json" || true)
echo "alerts: $(grep -c . "$work/alerts.json" || true), of which from the workload container $short_id: $detected"
[ "$detected" -ge 1 ] || fail "the workload's read of /etc/shadow was not attributed to its container; alerts:
$(head -c 2000 "$work/alerts.json")"
echo "agent-in-runc: the agent, with exactly the chart's privileges, detected and attributed the workload's event"
