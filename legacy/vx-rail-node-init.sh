#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
#
# vx-rail-node-init -- per-node init and housekeeping for vx-rail edge storage sites.
#
# Runs as a privileged DaemonSet on every edge node (see daemonset.yaml). Each loop iteration:
#
#   1. reads the cluster state (ConfigMaps + this Node) ONCE into shell variables (the "snapshot"),
#   2. bootstrap      -- first node without a cluster-state ConfigMap creates it and becomes primary
#   3. network        -- bond + storage/management VLANs from node.conf, failover, requested flips
#   4. storage        -- LINSTOR satellite/controller, node registration, pools, replica placement
#   5. migration      -- single -> multi-node migration phase machine (primary only)
#   6. taints         -- storage-not-ready taint and storage-ready label
#   7. boot recovery  -- after a reboot: bonds, DRBD modules, resources up, resync, taints off
#   8. upgrade        -- the 21-state storage (DRBD) upgrade, one node at a time
#   9. report         -- per-node ConfigMap, annotations
#
# Every decision in steps 2-8 is made from the snapshot taken in step 1. Two nodes that read the
# cluster state at the same moment decide from the same (possibly stale) picture. This is known
# (see VXR-402, the double-upgrade at a two-node site) and is why writes to the cluster-state
# ConfigMap are whole-blob overwrites: the last writer wins.
#
# Usage: vx-rail-node-init.sh run|once|step <name> [args...]
#   run   loop forever, sleeping $VXR_INTERVAL seconds between iterations
#   once  one iteration, exit with its status
#   step  run one host step for Nodewright and exit: 0 done, 1 failed, 2 bad usage (lib/step.sh)
#
# Workflows Nodewright has taken over (ConfigMap nodewright-takeover) are skipped: lib/takeover.sh.
#
# Host boundary: legacy/HOST-INTERFACE.md. Do not add a host command without adding it there.

set -Eeuo pipefail

VXR_VERSION=4.12.3

NODE_NAME=${NODE_NAME:-$(hostname)}
VXR_ROOT=${VXR_ROOT:-}
VXR_NAMESPACE=${VXR_NAMESPACE:-kube-system}
VXR_INTERVAL=${VXR_INTERVAL:-30}
VXR_LOG_FORMAT=${VXR_LOG_FORMAT:-kv}
KUBECTL=${KUBECTL:-kubectl}
# How long one iteration may block waiting for a DRBD resync before it gives the loop back (s).
VXR_RESYNC_WAIT=${VXR_RESYNC_WAIT:-120}
# Seconds between polls while waiting inside an iteration.
VXR_POLL=${VXR_POLL:-10}
# A migration phase that waits longer than this fails and the migration rolls back (s).
VXR_MIGRATION_TIMEOUT=${VXR_MIGRATION_TIMEOUT:-1800}
# An upgrade node that stays in WAIT_RESYNC longer than this fails and the upgrade rolls back (s).
VXR_UPGRADE_TIMEOUT=${VXR_UPGRADE_TIMEOUT:-3600}
# A node whose status blob is older than this is not "alive" for migration preflight (s).
VXR_HEARTBEAT_STALE=${VXR_HEARTBEAT_STALE:-300}

CLUSTER_CM=vx-rail-cluster-state
NODE_CM="vx-rail-node-${NODE_NAME}"
STATE_DIR="${VXR_ROOT}/var/lib/vx-rail"
TAINT_STORAGE=vx-rail.io/storage-not-ready
TAINT_UPGRADE=vx-rail.io/upgrade-in-progress

VXR_LIB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib"

# Logs go to fd 3 (the container's stdout), so functions that return data on stdout can log freely.
exec 3>&1

# shellcheck source=lib/log.sh
source "$VXR_LIB/log.sh"
# shellcheck source=lib/util.sh
source "$VXR_LIB/util.sh"
# shellcheck source=lib/kube.sh
source "$VXR_LIB/kube.sh"
# shellcheck source=lib/host.sh
source "$VXR_LIB/host.sh"
# shellcheck source=lib/takeover.sh
source "$VXR_LIB/takeover.sh"
# shellcheck source=lib/snapshot.sh
source "$VXR_LIB/snapshot.sh"
# shellcheck source=lib/bootstrap.sh
source "$VXR_LIB/bootstrap.sh"
# shellcheck source=lib/network.sh
source "$VXR_LIB/network.sh"
# shellcheck source=lib/storage.sh
source "$VXR_LIB/storage.sh"
# shellcheck source=lib/migration.sh
source "$VXR_LIB/migration.sh"
# shellcheck source=lib/taints.sh
source "$VXR_LIB/taints.sh"
# shellcheck source=lib/boot.sh
source "$VXR_LIB/boot.sh"
# shellcheck source=lib/upgrade.sh
source "$VXR_LIB/upgrade.sh"
# shellcheck source=lib/report.sh
source "$VXR_LIB/report.sh"
# shellcheck source=lib/step.sh
source "$VXR_LIB/step.sh"

# One iteration. Runs in a subshell (see run_iteration) so that `set -e` ends the iteration, not
# the DaemonSet pod, and so that no snapshot variable survives into the next iteration.
iteration() {
    CURRENT_STEP=init
    ITER_START=$(now_epoch)
    trap 'on_err $? $LINENO "$BASH_COMMAND"' ERR
    trap 'on_iteration_exit $?' EXIT

    load_node_conf
    snapshot_read

    # A workflow Nodewright owns (takeover.sh) is skipped; what later steps read from it is still
    # computed from the snapshot, without acting on it.
    CURRENT_STEP=bootstrap
    if takeover_operator bootstrap; then
        takeover_skip bootstrap bootstrap
        bootstrap_observe
    else
        bootstrap_run
    fi
    CURRENT_STEP=network;   network_run
    CURRENT_STEP=storage;   storage_run
    CURRENT_STEP=migration
    if takeover_operator migration; then takeover_skip migration migration; else migration_run; fi
    CURRENT_STEP=taints
    if takeover_operator taints; then
        takeover_skip taints taints
        taints_reason
    else
        taints_run
    fi
    CURRENT_STEP=boot
    if takeover_operator boot-recovery; then takeover_skip boot boot-recovery; else boot_recovery_run; fi
    CURRENT_STEP=upgrade
    if takeover_operator storage-upgrade; then takeover_skip upgrade storage-upgrade; else upgrade_run; fi
    CURRENT_STEP=report;    report_run
    CURRENT_STEP=finished
}

# Called on every exit of the iteration subshell: records how the loop ended on the Node.
on_iteration_exit() {
    local rc=$1 outcome=ok
    trap - ERR EXIT
    ((rc == 0)) || outcome=error
    report_last_run "$outcome" "$rc" || true
    log info main "iteration finished" outcome="$outcome" step="$CURRENT_STEP" rc="$rc" \
        duration="$(( $(now_epoch) - ITER_START ))"
    exit "$rc"
}

# Sets ITER_RC and always returns 0. It must not be called as `run_iteration || ...`: bash ignores
# `set -e` in everything run from the left of `||`, subshells included, and a failing host
# command would then go unnoticed (this is how 4.2 kept tainting healthy nodes, VXR-233).
run_iteration() {
    set +e
    ( set -Eeuo pipefail; iteration )
    ITER_RC=$?
    set -e
    return 0
}

main() {
    local mode=${1:-run}
    case $mode in
        once)
            log_start "$mode"
            run_iteration
            exit "$ITER_RC"
            ;;
        run)
            log_start "$mode"
            while :; do
                # A failed iteration is logged by its own traps; the loop carries on, as it always
                # has: a node with a broken bond must still report its storage next time round.
                run_iteration
                sleep "$VXR_INTERVAL"
            done
            ;;
        step)
            shift
            step_main "$@"
            ;;
        *)
            printf 'usage: %s run|once|step <name> [args...]\n' "${0##*/}" >&2
            exit 2
            ;;
    esac
}

main "$@"
