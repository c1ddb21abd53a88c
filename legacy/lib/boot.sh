# shellcheck shell=bash disable=SC2034  # globals set here are read by the other lib/*.sh files
# Boot-time recovery.
#
# A boot id (/proc/sys/kernel/random/boot_id) different from /var/lib/vx-rail/last-boot-id means
# the node rebooted since recovery last finished (a node's first-ever start, with no record of any
# boot at all, only records its boot id: see snapshot_read). Phases, in order:
#   ASSEMBLING_NETWORK LOADING_MODULES STARTING_RESOURCES WAITING_FOR_RESYNC REMOVING_TAINTS COMPLETED
# and FAILED when a host command fails. The phase is kept in the node ConfigMap (boot-recovery);
# WAITING_FOR_RESYNC carries over to the next iteration, FAILED starts over next iteration.
# last-boot-id is written only at COMPLETED, so a node that dies mid-recovery recovers again.
#
# A reboot in the middle of a storage upgrade is left to the upgrade machine: it resumes at the
# state it persisted and knows which modules and packages it wants (VXR-377).

BOOT_PHASES="ASSEMBLING_NETWORK LOADING_MODULES STARTING_RESOURCES WAITING_FOR_RESYNC REMOVING_TAINTS COMPLETED"

boot_recovery_run() {
    if ((BOOT_FIRST_START == 1)); then
        annotate "$NODE_NAME" "boot-id=$BOOT_ID_NOW"
        return 0
    fi
    ((BOOT_PENDING == 1)) || return 0
    if node_in_upgrade; then
        log warn boot "reboot detected during storage upgrade, upgrade machine resumes instead" \
            upgrade_state="$(blob_get "$S_UPGRADE" state)" boot_id="$BOOT_ID_NOW"
        return 0
    fi

    local phase uptime
    BR=$S_BOOT_RECOVERY
    phase=$(blob_get "$BR" phase)
    if [[ $(blob_get "$BR" boot_id) != "$BOOT_ID_NOW" || $phase == FAILED || $phase == COMPLETED || -z $phase ]]; then
        uptime=$(read_host_file /proc/uptime) || uptime=0
        uptime=${uptime%% *}
        BR="phase=;boot_id=${BOOT_ID_NOW};boot_time=$(( $(now_epoch) - ${uptime%.*} ));started=$(now_epoch)"
        log warn boot "reboot detected, starting boot recovery" boot_id="$BOOT_ID_NOW" \
            last_boot_id="${BOOT_ID_LAST:-none}" uptime="$uptime"
        boot_enter ASSEMBLING_NETWORK
        phase=ASSEMBLING_NETWORK
    else
        log info boot "resuming boot recovery" phase="$phase" boot_id="$BOOT_ID_NOW"
    fi

    while :; do
        case $phase in
            ASSEMBLING_NETWORK)
                NET_STATE=ok
                network_assemble || { boot_fail "network assembly failed"; return 0; }
                ;;
            LOADING_MODULES)
                if ! module_loaded drbd; then
                    host_do boot modprobe drbd || { boot_fail "modprobe drbd failed"; return 0; }
                fi
                if ! module_loaded drbd_transport_tcp; then
                    host_do boot modprobe drbd_transport_tcp || { boot_fail "modprobe drbd_transport_tcp failed"; return 0; }
                fi
                ;;
            STARTING_RESOURCES)
                if [[ $(systemctl is-active linstor-satellite 2>/dev/null || true) != active ]]; then
                    host_do boot systemctl start linstor-satellite || { boot_fail "linstor-satellite start failed"; return 0; }
                fi
                # adjust, not up: it brings down resources up and leaves running ones alone.
                # With no resource configured here (a node that holds no replica yet) there is
                # nothing to bring up, and `drbdadm adjust all` would fail ("no resources defined!").
                local configured=x
                capture configured drbdadm sh-resources || configured=x
                if [[ -z ${configured//[[:space:]]/} ]]; then
                    log info boot "no DRBD resources configured on this node, none to start"
                else
                    host_do boot drbdadm adjust all || { boot_fail "drbdadm adjust all failed"; return 0; }
                fi
                ;;
            WAITING_FOR_RESYNC)
                drbd_wait boot "$VXR_RESYNC_WAIT" || return 0
                ;;
            REMOVING_TAINTS)
                if taint_value "$S_TAINTS" "$TAINT_STORAGE" >/dev/null || [[ -n ${TAINT_REASON:-} ]]; then
                    taint_del "$NODE_NAME" "$TAINT_STORAGE" ||
                        log warn boot "storage taint was not there to remove" taint="$TAINT_STORAGE"
                fi
                label "$NODE_NAME" storage-ready=true || { boot_fail "label storage-ready failed"; return 0; }
                TAINT_REASON=""
                S_LABEL_READY=true
                STORAGE_SATELLITE=$(systemctl is-active linstor-satellite 2>/dev/null) || true
                ;;
            COMPLETED)
                mkdir -p "$STATE_DIR"
                printf '%s\n' "$BOOT_ID_NOW" >"$STATE_DIR/last-boot-id"
                annotate "$NODE_NAME" "boot-id=$BOOT_ID_NOW"
                log info boot "boot recovery completed" boot_id="$BOOT_ID_NOW" \
                    took="$(( $(now_epoch) - $(blob_get "$BR" started) ))"
                BOOT_PENDING=0
                return 0
                ;;
        esac
        phase=$(boot_next_phase "$phase")
        boot_enter "$phase"
    done
}

boot_next_phase() {
    local p=$1 seen=0 x
    for x in $BOOT_PHASES; do
        if ((seen)); then
            printf '%s' "$x"
            return 0
        fi
        if [[ $x == "$p" ]]; then seen=1; fi
    done
    return 0
}

# boot_enter PHASE [MSG]
boot_enter() {
    local to=$1 msg=${2:-} from
    from=$(blob_get "$BR" phase)
    BR=$(blob_set "$BR" phase "$to")
    BR=$(blob_set "$BR" since "$(now_epoch)")
    BR=$(blob_del "$BR" msg)
    [[ -z $msg ]] || BR=$(blob_set "$BR" msg "$msg")
    cm_patch "$NODE_CM" boot-recovery "$BR"
    S_BOOT_RECOVERY=$BR
    log info boot "boot recovery phase" from="${from:-none}" to="$to"
}

boot_fail() {
    log error boot "boot recovery failed" phase="$(blob_get "$BR" phase)" reason="$1"
    BR=$(blob_set "$BR" failed_phase "$(blob_get "$BR" phase)")
    boot_enter FAILED "$1"
}
