# shellcheck shell=bash
# End of iteration: what this node reports about itself.
#   node ConfigMap vx-rail-node-<node>: status (blob), heartbeat, script-version, drbd-status,
#       and takeover-generation while a takeover ConfigMap exists (see takeover.sh)
#   Node annotations: vx-rail.io/state, vx-rail.io/last-run (on every exit, see on_iteration_exit)

report_run() {
    local state status upstate="" drbd=unknown
    if [[ $(blob_get "$S_UPGRADE" node) == "$NODE_NAME" ]]; then
        upstate=$(blob_get "$S_UPGRADE" state)
    fi
    ((DRBD_OK != 1)) || drbd=ok
    if ((BOOT_PENDING == 1)); then
        state=recovering
    elif node_in_upgrade; then
        state=upgrading
    elif [[ $S_ROLE == joining ]]; then
        state=joining
    elif [[ ${NET_STATE:-ok} != ok || -n ${TAINT_REASON:-} ]]; then
        state=degraded
    else
        state=ready
    fi
    status="at=$(now_epoch);state=${state};role=${S_ROLE:-none};net=${NET_STATE:-unknown}"
    status+=";bond=${CONF_BOND_NAME};bond_mode=${NET_BOND_MODE:-unknown};bond_active=${NET_BOND_ACTIVE:-none}"
    status+=";slaves=${NET_SLAVES:-};storage_vlan=${NET_STORAGE_VLAN:-};mgmt_vlan=${NET_MGMT_VLAN:-}"
    status+=";satellite=${STORAGE_SATELLITE:-unknown};drbd=${drbd}"
    status+=";resources=${DRBD_RES_COUNT:-0};uptodate=${DRBD_UPTODATE_COUNT:-0};syncing=${DRBD_SYNCING:-0}"
    status+=";taint=${TAINT_REASON:-none};boot=$(blob_get "$S_BOOT_RECOVERY" phase)"
    status+=";upgrade=${upstate}"
    status+=";drbd_version=$(installed_version)"

    # The takeover acknowledgement: the generation this iteration read (only when there is one).
    local -a ack=()
    ((${TAKEOVER_EXISTS:-0} == 0)) || ack=(takeover-generation "$TAKEOVER_GENERATION")
    cm_patch "$NODE_CM" status "$status" heartbeat "$(now_rfc3339)" script-version "$VXR_VERSION" \
        drbd-status "$DRBD_RAW" "${ack[@]}"
    if [[ $S_ANN_STATE != "$state" ]]; then
        log info report "node state changed" from="${S_ANN_STATE:-none}" to="$state"
        annotate "$NODE_NAME" "state=$state"
        S_ANN_STATE=$state
    fi
}

# report_last_run OUTCOME RC: the Node's vx-rail.io/last-run annotation (and state=error on failure).
report_last_run() {
    local outcome=$1 rc=$2
    local -a ann=("last-run=ts=$(now_rfc3339);version=${VXR_VERSION};outcome=${outcome};step=${CURRENT_STEP:-init};rc=${rc};duration=$(( $(now_epoch) - ${ITER_START:-0} ))")
    [[ $outcome == ok ]] || ann+=("state=error")
    annotate "$NODE_NAME" "${ann[@]}"
}
