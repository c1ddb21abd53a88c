# shellcheck shell=bash disable=SC2034  # globals set here are read by the other lib/*.sh files
# Taints and the storage-ready label.
#
#   vx-rail.io/storage-not-ready=<reason>:NoSchedule   while this node's DRBD replicas are not all
#       UpToDate (or cannot be read, or the satellite is down, or a reboot is being recovered).
#       Reasons: boot-recovery, satellite-down, drbd-unknown, resync, not-uptodate.
#   vx-rail.io/upgrade-in-progress=<to-version>:NoSchedule   put on in CORDON_AND_TAINT and taken
#       off in REMOVE_TAINT by the upgrade machine (upgrade.sh). Here only a leftover is cleaned up
#       once the upgrade has COMPLETED or ROLLED_BACK; after FAILED it stays for a human.
#
# Whether a taint is there is judged from the snapshot's {.spec.taints}.

taints_run() {
    local reason current have=0 ready=true up
    taints_reason
    reason=$TAINT_REASON
    [[ -z $reason ]] || ready=false

    if current=$(taint_value "$S_TAINTS" "$TAINT_STORAGE"); then
        have=1
    fi
    if [[ $ready == true ]] && ((have == 1)); then
        log info taints "storage ready, removing taint" taint="$TAINT_STORAGE" was="$current"
        taint_del "$NODE_NAME" "$TAINT_STORAGE"
    elif [[ $ready == false ]] && { ((have == 0)) || [[ $current != "$reason" ]]; }; then
        log warn taints "storage not ready, tainting node" taint="$TAINT_STORAGE" reason="$reason"
        taint_add "$NODE_NAME" "$TAINT_STORAGE" "$reason"
    fi
    if [[ $S_LABEL_READY != "$ready" ]]; then
        label "$NODE_NAME" "storage-ready=$ready"
        S_LABEL_READY=$ready
    fi

    up=$(blob_get "$S_UPGRADE" state)
    if taint_value "$S_TAINTS" "$TAINT_UPGRADE" >/dev/null && [[ $up == COMPLETED || $up == ROLLED_BACK ]]; then
        log warn taints "upgrade finished but its taint is still on the node, removing it" \
            taint="$TAINT_UPGRADE" upgrade_state="$up"
        taint_del "$NODE_NAME" "$TAINT_UPGRADE"
    fi
}

# taints_reason: TAINT_REASON, the storage-not-ready reason that applies to this node now (empty
# when none does). Only computes: while Nodewright owns the taints (takeover.sh) the report still
# carries the reason the script would have used.
taints_reason() {
    local reason=""
    if ((BOOT_PENDING == 1)); then
        reason=boot-recovery
    elif [[ $STORAGE_SATELLITE != active ]]; then
        reason=satellite-down
    elif ((DRBD_OK == 0)); then
        reason=drbd-unknown
    elif ! drbd_local_uptodate; then
        if ((DRBD_SYNCING == 1)); then reason=resync; else reason=not-uptodate; fi
    fi
    TAINT_REASON=$reason
}
