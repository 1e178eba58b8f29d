#!/usr/bin/env bash
# Measures what `palisade agent` needs on this kernel: for each capability set, whether the
# eBPF sensor loads and attaches (--sensor ebpf, which fails instead of falling back), and
# whether the /proc reads the agent makes of other processes succeed. Also runs the agent with
# tracefs, debugfs and bpffs unmounted. Run as root on a node; prints a table.
#
#   deploy/agent-privileges.sh [PALISADE_BINARY]
set -euo pipefail

binary="${1:-$(cd "$(dirname "$0")/.." && pwd)/target/x86_64-unknown-linux-gnu/release/palisade}"
[ -x "$binary" ] || { echo "agent-privileges: no binary at $binary (deploy/images/build.sh --binary-only builds it)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "agent-privileges: run as root" >&2; exit 1; }
work=$(mktemp -d)

# Processes the agent's /proc reads must reach, like those on a node: one as root with every
# capability this shell has (kubelet, containerd), one as another user (a container's
# non-root process).
sleep 120 &
root_target=$!
setpriv --reuid 65534 --regid 65534 --clear-groups sleep 120 &
user_target=$!
trap 'kill "$root_target" "$user_target" 2>/dev/null; rm -rf "$work"' EXIT

# Runs the agent for a few seconds with only these capabilities (bounding set, so a root
# process cannot regain others; no_new_privs as allowPrivilegeEscalation=false sets it).
agent_loads() {
  local caps="$1"; shift
  local log="$work/agent.log"
  timeout --preserve-status -s INT 4 setpriv --no-new-privs --inh-caps=-all \
    --bounding-set="-all${caps:+,$caps}" -- \
    "$@" "$binary" --log-format json agent --stdout --sensor ebpf --node-name probe >"$work/alerts.json" 2>"$log" || true
  if grep -q 'sensor started' "$log" && grep -q '"ebpf"\|sensor=ebpf' "$log"; then
    echo yes
  else
    echo "no: $(sed -n 's/^palisade: error: the eBPF sensor cannot start: //p' "$log" | cut -c1-34)"
  fi
}

# The agent's reads of another process: exe and cwd links, a namespace link, a file through
# its root.
proc_reads() {
  local caps="$1" pid="$2" result=""
  for probe in "readlink /proc/$pid/exe" "readlink /proc/$pid/cwd" \
               "readlink /proc/$pid/ns/mnt" "head -c1 /proc/$pid/root/etc/passwd"; do
    if setpriv --no-new-privs --inh-caps=-all --bounding-set="-all${caps:+,$caps}" -- sh -c "$probe" >/dev/null 2>&1; then
      result+="ok "
    else
      result+="DENIED "
    fi
  done
  echo "$result"
}

printf '%-32s | %-40s | %-24s | %s\n' "capabilities (bounding set)" "eBPF sensor loads" \
  "root process: exe cwd ns root/" "other user's: exe cwd ns root/"
for caps in "" "+bpf" "+perfmon" "+bpf,+perfmon" "+bpf,+perfmon,+sys_ptrace" "+sys_admin" \
            "+bpf,+perfmon,+dac_read_search"; do
  printf '%-32s | %-40s | %-30s | %s\n' "${caps:-none}" "$(agent_loads "$caps")" \
    "$(proc_reads "$caps" "$root_target")" "$(proc_reads "$caps" "$user_target")"
done

# tracefs, debugfs and bpffs out of sight: tp_btf programs attach through BPF links and pin
# nothing, so the agent should not need them.
mounts_gone=$(unshare --mount --propagation private sh -c '
  for fs in /sys/kernel/tracing /sys/kernel/debug /sys/fs/bpf; do
    mountpoint -q "$fs" && umount -l "$fs"
  done
  exec "$@"' sh timeout --preserve-status -s INT 4 setpriv --no-new-privs --inh-caps=-all \
    --bounding-set=-all,+bpf,+perfmon,+sys_ptrace -- "$binary" --log-format json agent --stdout --sensor ebpf \
    --node-name probe 2>&1 >/dev/null || true)
if grep -q 'sensor started' <<<"$mounts_gone"; then
  echo "without tracefs, debugfs and bpffs mounted: the eBPF sensor loads"
else
  echo "without tracefs, debugfs and bpffs mounted: the eBPF sensor does NOT load: $(tail -n 2 <<<"$mounts_gone")"
fi
