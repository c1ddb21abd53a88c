# shellcheck shell=bash
# The storage (DRBD) upgrade: 21 states, cluster-wide, one node at a time.
#
#   PENDING -> per node, in `order`:
#     PREFLIGHT QUORUM_CHECK BACKUP_CONFIG CORDON_AND_TAINT DEMOTE_PRIMARIES STOP_SATELLITE
#     DOWN_RESOURCES UNLOAD_MODULES INSTALL_PACKAGES LOAD_MODULES START_SATELLITE UP_RESOURCES
#     WAIT_RESYNC VERIFY_VERSION REMOVE_TAINT UNCORDON
#   -> COMPLETED after the last node's UNCORDON.
#   A failure in any per-node state -> ROLLING_BACK -> ROLLED_BACK, or FAILED when rollback fails.
#
# Started by writing `desired-storage-version` into the cluster-state ConfigMap. The primary,
# when it sees in its snapshot a desired version newer than what it runs and no upgrade in
# progress, writes upgrade=state=PENDING with itself first in the order, and goes straight on.
# So that a site whose primary is down can still be upgraded, a member does the same when the
# primary's status (`at`) is older than VXR_HEARTBEAT_STALE. A primary that comes back reports
# only at the end of its first iteration: a member reading in that iteration still sees it
# stale, both start, and both upgrade at once (VXR-402: a two-node site lost quorum). The fix
# needs a lock the script does not have.
#
# The version is the DRBD kernel module version (what /proc/drbd prints); the package installed
# is drbd-dkms=<version>-<UP_PKG_REVISION>.
#
# An `upgrade` blob with owner=operator is Nodewright's: the script holds off (see upgrade_run).
#
# Each state entered is persisted (the `upgrade` blob and the node's upgrade-state annotation)
# before its host commands run, and journalled to /var/lib/vx-rail/upgrade.journal, which is what
# rollback reads to know what to undo on this node.

UP_STATES="PENDING PREFLIGHT QUORUM_CHECK BACKUP_CONFIG CORDON_AND_TAINT DEMOTE_PRIMARIES STOP_SATELLITE DOWN_RESOURCES UNLOAD_MODULES INSTALL_PACKAGES LOAD_MODULES START_SATELLITE UP_RESOURCES WAIT_RESYNC VERIFY_VERSION REMOVE_TAINT UNCORDON COMPLETED ROLLING_BACK ROLLED_BACK FAILED"
UP_PER_NODE="PREFLIGHT QUORUM_CHECK BACKUP_CONFIG CORDON_AND_TAINT DEMOTE_PRIMARIES STOP_SATELLITE DOWN_RESOURCES UNLOAD_MODULES INSTALL_PACKAGES LOAD_MODULES START_SATELLITE UP_RESOURCES WAIT_RESYNC VERIFY_VERSION REMOVE_TAINT UNCORDON"
# Our mirror rebuilds drbd-dkms for every release as Debian revision 1.
UP_PKG_REVISION=1
UP_JOURNAL_NAME=upgrade.journal

upgrade_is_per_node() { [[ -n $1 && " $UP_PER_NODE " == *" $1 "* ]]; }
upgrade_is_terminal() { [[ $1 == COMPLETED || $1 == ROLLED_BACK || $1 == FAILED ]]; }

# installed_version -> upstream version of the installed drbd-dkms, or empty
installed_version() {
    local v
    v=$(dpkg-query -W -f '${Version}' drbd-dkms 2>/dev/null) || v=""
    upstream_version "$v"
}

upgrade_run() {
    local state installed desired
    UP=$S_UPGRADE
    state=$(blob_get "$UP" state)

    # An upgrade Nodewright runs is mirrored here (owner=operator) so that every node holds its
    # hands while it runs (the storage step treats the node it is on as in the upgrade:
    # node_in_upgrade); it is never advanced or rolled back from this script, whatever the
    # takeover says, and no new one is started over it. Once it has ended (COMPLETED,
    # ROLLED_BACK, FAILED) it is history like the script's own: a script that decides the
    # workflow again starts the next version from desired-storage-version as before.
    if [[ $(blob_get "$UP" owner) == operator ]] && ! upgrade_is_terminal "$state"; then
        log info upgrade "storage upgrade owned by nodewright, not touching it" state="${state:-none}" \
            node="$(blob_get "$UP" node)" to="$(blob_get "$UP" to)"
        return 0
    fi

    desired=$S_DESIRED_VERSION
    installed=$(installed_version)

    if [[ -n $state && " $UP_STATES " != *" $state "* ]]; then
        log error upgrade "unknown upgrade state, not touching it" state="$state"
        return 0
    fi

    if [[ -n $desired ]] && { [[ -z $state ]] || upgrade_is_terminal "$state"; } &&
        [[ $(blob_get "$UP" to) != "$desired" ]] && version_gt "$desired" "${installed:-0}"; then
        if [[ $S_ROLE != primary && $S_ROLE != member ]]; then
            log info upgrade "newer storage version wanted, but this node is not a site member yet" \
                desired="$desired" role="${S_ROLE:-none}"
        elif migration_active; then
            log info upgrade "newer storage version wanted, waiting for the migration to end" desired="$desired"
        elif [[ $S_PRIMARY != "$NODE_NAME" ]] && upgrade_primary_alive; then
            : # the primary starts it
        else
            if [[ $S_PRIMARY != "$NODE_NAME" ]]; then
                log warn upgrade "primary not reporting, starting the storage upgrade from this node" \
                    primary="$S_PRIMARY" stale_after="$VXR_HEARTBEAT_STALE"
            fi
            upgrade_start "$installed" "$desired"
            state=PENDING
        fi
    fi

    [[ -n $state ]] || return 0

    if upgrade_is_terminal "$state"; then
        upgrade_sync_annotation "$state"
        return 0
    fi

    case $state in
        PENDING)
            local first
            first=$(blob_get "$UP" order)
            first=${first%%,*}
            [[ $first == "$NODE_NAME" ]] || return 0
            UP=$(blob_set "$UP" node "$NODE_NAME")
            upgrade_enter PREFLIGHT
            upgrade_advance PREFLIGHT
            ;;
        ROLLING_BACK)
            upgrade_rollback_node
            ;;
        *)
            [[ $(blob_get "$UP" node) == "$NODE_NAME" ]] || return 0
            log info upgrade "resuming storage upgrade" state="$state" to="$(blob_get "$UP" to)"
            upgrade_advance "$state"
            ;;
    esac
}

# upgrade_primary_alive: the primary's status was reported within VXR_HEARTBEAT_STALE seconds.
upgrade_primary_alive() {
    local st at
    st=$(cm_get "vx-rail-node-${S_PRIMARY}" status 2>/dev/null) || return 1
    at=$(blob_get "$st" at)
    [[ -n $at ]] && (($(now_epoch) - at <= VXR_HEARTBEAT_STALE))
}

upgrade_start() {
    local from=$1 to=$2 order=$NODE_NAME n role now
    # This node goes first: it has just checked it needs the upgrade.
    while read -r n; do
        [[ -n $n && $n != "$NODE_NAME" ]] || continue
        role=$(member_field "$S_MEMBERS" "$n" role)
        if [[ $role == primary || $role == member ]]; then order+=",$n"; fi
    done < <(member_names "$S_MEMBERS" | sort)
    now=$(now_epoch)
    UP="state=PENDING;from=${from};to=${to};order=${order};node=;done=;rolled=;by=${NODE_NAME};started=${now};since=${now}"
    log warn upgrade "storage upgrade started" from="$from" to="$to" order="$order"
    cm_patch "$CLUSTER_CM" upgrade "$UP"
    annotate "$NODE_NAME" "upgrade-state=state=PENDING;to=${to};since=${now}"
    S_UPGRADE=$UP
    mkdir -p "$STATE_DIR"
    printf '%s %s PENDING enter\n' "$now" "$to" >>"$STATE_DIR/$UP_JOURNAL_NAME"
}

# upgrade_enter STATE [MSG] [noannotate]: persist the state, then annotate this node with it.
upgrade_enter() {
    local to_state=$1 msg=${2:-} noann=${3:-} from now ver
    from=$(blob_get "$UP" state)
    now=$(now_epoch)
    ver=$(blob_get "$UP" to)
    UP=$(blob_set "$UP" state "$to_state")
    UP=$(blob_set "$UP" since "$now")
    UP=$(blob_del "$UP" msg)
    [[ -z $msg ]] || UP=$(blob_set "$UP" msg "$msg")
    cm_patch "$CLUSTER_CM" upgrade "$UP"
    S_UPGRADE=$UP
    if [[ -z $noann ]]; then
        annotate "$NODE_NAME" "upgrade-state=state=${to_state};to=${ver};since=${now}"
        S_ANN_UPGRADE="state=${to_state};to=${ver};since=${now}"
        mkdir -p "$STATE_DIR"
        printf '%s %s %s enter\n' "$now" "$ver" "$to_state" >>"$STATE_DIR/$UP_JOURNAL_NAME"
    fi
    local -a extra=()
    [[ -z $msg ]] || extra=("msg=$msg")
    log info upgrade "upgrade state changed" from="${from:-none}" to="$to_state" \
        node="$(blob_get "$UP" node)" version="$ver" "${extra[@]}"
}

upgrade_next_state() {
    local p=$1 seen=0 x
    for x in $UP_PER_NODE; do
        if ((seen)); then
            printf '%s' "$x"
            return 0
        fi
        if [[ $x == "$p" ]]; then seen=1; fi
    done
    return 0
}

# Run per-node states from STATE until this node is done, must wait, or fails.
upgrade_advance() {
    local state=$1 rc since
    while :; do
        rc=0
        UP_ERR=""
        "up_$state" || rc=$?
        case $rc in
            0)
                if [[ $state == UNCORDON ]]; then
                    upgrade_node_done
                    return 0
                fi
                state=$(upgrade_next_state "$state")
                upgrade_enter "$state"
                ;;
            2)
                since=$(blob_get "$UP" since)
                if (($(now_epoch) - ${since:-0} > VXR_UPGRADE_TIMEOUT)); then
                    upgrade_fail "$state" "timed out after ${VXR_UPGRADE_TIMEOUT}s"
                fi
                return 0
                ;;
            3)
                log info upgrade "node already runs the target version, skipping it" \
                    version="$(blob_get "$UP" to)"
                upgrade_node_done
                return 0
                ;;
            *)
                upgrade_fail "$state" "${UP_ERR:-host command failed}"
                return 0
                ;;
        esac
    done
}

# This node finished its per-node states: hand over to the next node in order, or complete.
upgrade_node_done() {
    local finished next="" n
    finished=$(list_add "$(blob_get "$UP" "done")" "$NODE_NAME")
    UP=$(blob_set "$UP" "done" "$finished")
    for n in $(list_words "$(blob_get "$UP" order)"); do
        if ! list_has "$finished" "$n"; then
            next=$n
            break
        fi
    done
    if [[ -z $next ]]; then
        UP=$(blob_set "$UP" node "")
        UP=$(blob_set "$UP" finished "$(now_epoch)")
        upgrade_enter COMPLETED
        log info upgrade "storage upgrade completed on every node" version="$(blob_get "$UP" to)" order="$(blob_get "$UP" order)"
        return 0
    fi
    log info upgrade "node upgraded, handing over" next="$next"
    UP=$(blob_set "$UP" node "$next")
    upgrade_enter PREFLIGHT "" noannotate
}

upgrade_fail() {
    local state=$1 msg=$2
    log error upgrade "upgrade state failed, rolling back" state="$state" reason="$msg"
    UP=$(blob_set "$UP" failed_state "$state")
    UP=$(blob_set "$UP" failed_node "$NODE_NAME")
    upgrade_enter ROLLING_BACK "$state: $msg"
    upgrade_rollback_node
}

# Once the upgrade has ended, every node it touched shows the end state on its annotation.
upgrade_sync_annotation() {
    local state=$1
    list_has "$(list_add "$(blob_get "$UP" "done")" "$(blob_get "$UP" failed_node)")" "$NODE_NAME" || return 0
    [[ $(blob_get "$S_ANN_UPGRADE" state) != "$state" ]] || return 0
    annotate "$NODE_NAME" "upgrade-state=state=${state};to=$(blob_get "$UP" to);since=$(blob_get "$UP" since)"
}

# --- the per-node states: 0 done, 1 failed (UP_ERR), 2 wait, 3 nothing to do on this node --------

up_PREFLIGHT() {
    local to st
    to=$(blob_get "$UP" to)
    if [[ $(installed_version) == "$to" ]]; then
        return 3
    fi
    st=$(systemctl is-active linstor-satellite 2>/dev/null) || true
    [[ $st == active ]] || { UP_ERR="linstor-satellite is ${st:-unknown}"; return 1; }
    drbd_read
    ((DRBD_OK == 1)) || { UP_ERR="drbdadm status failed"; return 1; }
    if ! drbd_local_uptodate || ((DRBD_ALL_PEERS_UPTODATE == 0 || DRBD_SYNCING == 1)); then
        log_block "drbdadm status all" "$DRBD_RAW"
        UP_ERR="storage not healthy before upgrade"
        return 1
    fi
    host_do upgrade apt-get update -qq || { UP_ERR="apt-get update failed"; return 1; }
    log info upgrade "preflight passed" installed="$(installed_version)" to="$to"
}

# Every resource must keep quorum while this node is away: at least one connected UpToDate peer.
up_QUORUM_CHECK() {
    local t res peer conn prole repl pdisk pct bad=""
    local -A ok=()
    drbd_read
    ((DRBD_OK == 1)) || { UP_ERR="drbdadm status failed"; return 1; }
    while IFS=$'\t' read -r t res peer conn prole repl pdisk pct; do
        case $t in
            R) ok[$res]=${ok[$res]:-0} ;;
            P) if [[ $conn == Connected && $pdisk == UpToDate ]]; then ok[$res]=1; fi ;;
        esac
        : "$peer" "$prole" "$repl" "$pct"
    done <<<"$DRBD_PARSED"
    for res in "${!ok[@]}"; do
        [[ ${ok[$res]} == 1 ]] || bad+=" $res"
    done
    if [[ -n $bad ]]; then
        log_block "drbdadm status all" "$DRBD_RAW"
        UP_ERR="no UpToDate peer for:${bad}"
        return 1
    fi
    log info upgrade "quorum holds without this node" resources="$DRBD_RES_COUNT"
}

up_BACKUP_CONFIG() {
    local dir out
    dir="$STATE_DIR/backup/$(blob_get "$UP" to)-$(now_epoch)"
    mkdir -p "$dir" || { UP_ERR="cannot create $dir"; return 1; }
    capture out drbdsetup status --verbose --statistics || { UP_ERR="drbdsetup status failed"; return 1; }
    printf '%s\n' "$out" >"$dir/drbdsetup-status.txt"
    capture out drbdadm status all || { UP_ERR="drbdadm status failed"; return 1; }
    printf '%s\n' "$out" >"$dir/drbdadm-status.txt"
    if [[ $S_PRIMARY == "$NODE_NAME" ]]; then
        capture out linstor --no-color resource list || { UP_ERR="linstor resource list failed"; return 1; }
        printf '%s\n' "$out" >"$dir/linstor-resource-list.txt"
        capture out linstor --no-color volume list || { UP_ERR="linstor volume list failed"; return 1; }
        printf '%s\n' "$out" >"$dir/linstor-volume-list.txt"
    fi
    log info upgrade "configuration backed up" dir="${dir#"$VXR_ROOT"}"
}

up_CORDON_AND_TAINT() {
    k cordon "$NODE_NAME" >/dev/null || { UP_ERR="cordon failed"; return 1; }
    taint_add "$NODE_NAME" "$TAINT_UPGRADE" "$(blob_get "$UP" to)" || { UP_ERR="taint failed"; return 1; }
}

up_DEMOTE_PRIMARIES() {
    local r
    drbd_read
    for r in $DRBD_PRIMARIES; do
        host_do upgrade drbdadm secondary "$r" || { UP_ERR="drbdadm secondary $r failed"; return 1; }
    done
}

up_STOP_SATELLITE() {
    host_do upgrade systemctl stop linstor-satellite || { UP_ERR="systemctl stop linstor-satellite failed"; return 1; }
}

up_DOWN_RESOURCES() {
    host_do upgrade drbdadm down all || { UP_ERR="drbdadm down all failed"; return 1; }
}

up_UNLOAD_MODULES() {
    local mods
    host_do upgrade modprobe -r drbd_transport_tcp drbd || { UP_ERR="modprobe -r failed"; return 1; }
    if module_loaded drbd; then
        capture mods lsmod || true
        log_block lsmod "$mods"
        UP_ERR="drbd still loaded after modprobe -r"
        return 1
    fi
}

up_INSTALL_PACKAGES() {
    local to
    to=$(blob_get "$UP" to)
    host_do upgrade apt-get install -y -qq "drbd-dkms=${to}-${UP_PKG_REVISION}" ||
        { UP_ERR="apt-get install drbd-dkms=${to}-${UP_PKG_REVISION} failed"; return 1; }
}

up_LOAD_MODULES() {
    host_do upgrade modprobe drbd || { UP_ERR="modprobe drbd failed"; return 1; }
    host_do upgrade modprobe drbd_transport_tcp || { UP_ERR="modprobe drbd_transport_tcp failed"; return 1; }
}

up_START_SATELLITE() {
    local st
    host_do upgrade systemctl start linstor-satellite || { UP_ERR="systemctl start linstor-satellite failed"; return 1; }
    st=$(systemctl is-active linstor-satellite 2>/dev/null) || true
    [[ $st == active ]] || { UP_ERR="linstor-satellite is ${st:-unknown} after start"; return 1; }
}

up_UP_RESOURCES() {
    # adjust rather than up: an iteration that died after this state was entered would find the
    # resources already up, and `up` fails on those.
    host_do upgrade drbdadm adjust all || { UP_ERR="drbdadm adjust all failed"; return 1; }
}

up_WAIT_RESYNC() {
    drbd_wait upgrade "$VXR_RESYNC_WAIT" && return 0
    ((DRBD_OK == 1)) || { UP_ERR="drbdadm status failed"; return 1; }
    return 2
}

up_VERIFY_VERSION() {
    local to proc kernel pkg out
    to=$(blob_get "$UP" to)
    proc=$(read_host_file /proc/drbd 2>/dev/null) || proc=""
    kernel=$(printf '%s\n' "$proc" | awk '/^version:/ { print $2; exit }')
    pkg=$(installed_version)
    capture out drbdadm --version || true
    log_block "drbdadm --version" "$out"
    if [[ $kernel != "$to" || $pkg != "$to" ]]; then
        UP_ERR="running ${kernel:-none}, package ${pkg:-none}, wanted $to"
        return 1
    fi
    log info upgrade "version verified" kernel="$kernel" package="$pkg"
}

up_REMOVE_TAINT() {
    upgrade_taint_del || { UP_ERR="taint removal failed"; return 1; }
}

# Remove the upgrade taint; a taint that is already gone (a resumed state) is fine.
upgrade_taint_del() {
    local taints
    taint_del "$NODE_NAME" "$TAINT_UPGRADE" && return 0
    taints=$(node_jsonpath "$NODE_NAME" '{.spec.taints}') || return 1
    if taint_value "$taints" "$TAINT_UPGRADE" >/dev/null; then
        return 1
    fi
    log info upgrade "upgrade taint already gone" taint="$TAINT_UPGRADE"
}

up_UNCORDON() {
    k uncordon "$NODE_NAME" >/dev/null || { UP_ERR="uncordon failed"; return 1; }
}

# --- rollback ------------------------------------------------------------------------------------

# upgrade_entered STATE: this node's journal shows STATE entered for the current target version.
upgrade_entered() {
    local journal="$STATE_DIR/$UP_JOURNAL_NAME" to
    to=$(blob_get "$UP" to)
    [[ -r $journal ]] || return 1
    awk -v to="$to" -v st="$1" -v since="$(blob_get "$UP" started)" \
        '$2 == to && $3 == st && $4 == "enter" && $1 >= since { f = 1 } END { exit !f }' "$journal"
}

# Undo on this node what the journal says was done, if this node was touched and not yet rolled.
upgrade_rollback_node() {
    local touched rolled from st n all=1 fail=""
    touched=$(list_add "$(blob_get "$UP" "done")" "$(blob_get "$UP" failed_node)")
    rolled=$(blob_get "$UP" rolled)
    list_has "$touched" "$NODE_NAME" || return 0
    list_has "$rolled" "$NODE_NAME" && return 0
    from=$(blob_get "$UP" from)
    log warn upgrade "rolling this node back" from="$(blob_get "$UP" to)" to="$from" \
        failed_state="$(blob_get "$UP" failed_state)"
    annotate "$NODE_NAME" "upgrade-state=state=ROLLING_BACK;to=$(blob_get "$UP" to);since=$(now_epoch)"

    if upgrade_entered INSTALL_PACKAGES; then
        host_do upgrade systemctl stop linstor-satellite || true
        host_do upgrade drbdadm down all || true
        host_do upgrade modprobe -r drbd_transport_tcp drbd || true
        host_do upgrade apt-get install -y -qq "drbd-dkms=${from}-${UP_PKG_REVISION}" || fail="INSTALL_PACKAGES"
    fi
    if [[ -z $fail ]] && upgrade_entered UNLOAD_MODULES; then
        if ! module_loaded drbd; then host_do upgrade modprobe drbd || fail="LOAD_MODULES"; fi
        if [[ -z $fail ]] && ! module_loaded drbd_transport_tcp; then
            host_do upgrade modprobe drbd_transport_tcp || fail="LOAD_MODULES"
        fi
    fi
    if [[ -z $fail ]] && upgrade_entered STOP_SATELLITE; then
        st=$(systemctl is-active linstor-satellite 2>/dev/null) || true
        if [[ $st != active ]]; then host_do upgrade systemctl start linstor-satellite || fail="START_SATELLITE"; fi
    fi
    if [[ -z $fail ]] && upgrade_entered DOWN_RESOURCES; then
        host_do upgrade drbdadm adjust all || fail="UP_RESOURCES"
    fi
    if [[ -z $fail ]] && upgrade_entered CORDON_AND_TAINT; then
        upgrade_taint_del || fail="REMOVE_TAINT"
        [[ -n $fail ]] || k uncordon "$NODE_NAME" >/dev/null || fail="UNCORDON"
    fi

    if [[ -n $fail ]]; then
        UP=$(blob_set "$UP" finished "$(now_epoch)")
        upgrade_enter FAILED "rollback failed on ${NODE_NAME} at ${fail}"
        log error upgrade "rollback failed, node needs hands-on repair" node="$NODE_NAME" step="$fail"
        return 0
    fi

    rolled=$(list_add "$rolled" "$NODE_NAME")
    UP=$(blob_set "$UP" rolled "$rolled")
    for n in $(list_words "$touched"); do
        list_has "$rolled" "$n" || all=0
    done
    if ((all)); then
        UP=$(blob_set "$UP" finished "$(now_epoch)")
        upgrade_enter ROLLED_BACK "$(blob_get "$UP" msg)"
        log info upgrade "storage upgrade rolled back" version="$from"
    else
        cm_patch "$CLUSTER_CM" upgrade "$UP"
        S_UPGRADE=$UP
        annotate "$NODE_NAME" "upgrade-state=state=ROLLED_BACK;to=$(blob_get "$UP" to);since=$(now_epoch)"
        log info upgrade "node rolled back, waiting for the other touched nodes" rolled="$rolled" touched="$touched"
    fi
}
