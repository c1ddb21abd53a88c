# shellcheck shell=bash disable=SC2034  # globals set here are read by the other lib/*.sh files
# Bond + VLAN networking, from node.conf.
#
# The bond is created with node.conf's mode. A mode flip requested through the cluster-state
# ConfigMap (bond-flip.<node>) and applied by this script changes the running bond only; node.conf
# is not rewritten, so a flipped mode is lost when boot recovery re-assembles the bond after a
# reboot (VXR-311, open). A flip made by the node agent (bond-flip in operator mode) rewrites
# node.conf's BOND_MODE once confirmed, so its mode survives a reboot.

BOND_MODES="balance-rr active-backup balance-xor broadcast 802.3ad balance-tlb balance-alb"

# A node agent flipping a bond (its bond-flip step) keeps the bond's state before the flip in
# <agent state dir>/bond-flip/<bond>.json from before it changes the bond until the flip is
# confirmed or reverted. While that file exists the network step leaves the bond and its VLANs
# alone: re-enslaving a slave or switching the active slave mid-flip would fight the agent and
# its probe. A file past its deadline by more than BOND_FLIP_HOLD_GRACE seconds no longer holds
# the bond (an agent gone that long reverts it when it starts again).
BOND_FLIP_DIR="/var/lib/nodewright-agent/bond-flip"
BOND_FLIP_HOLD_GRACE=300

network_run() {
    NET_STATE=ok
    if bond_flip_held; then
        bond_read "$CONF_BOND_NAME"
        network_summary
        return 0
    fi
    if takeover_operator network; then takeover_skip network network; network_observe
    else network_assemble; bond_watch_failover; fi
    if takeover_operator bond-flip; then
        takeover_skip network bond-flip
    else
        bond_apply_flip_request
    fi
    network_summary
}

# bond_flip_held: succeeds when a node agent's flip of the bond is in progress (see
# BOND_FLIP_DIR), and logs that the bond is left alone.
bond_flip_held() {
    local f="${VXR_ROOT}${BOND_FLIP_DIR}/${CONF_BOND_NAME}.json" text deadline=0
    [[ -f $f ]] || return 1
    text=$(<"$f") || text=""
    if [[ $text =~ \"deadline\":([0-9]+) ]]; then
        deadline=${BASH_REMATCH[1]}
    fi
    if (($(now_epoch) > deadline + BOND_FLIP_HOLD_GRACE)); then
        log warn network "bond flip marker is past its deadline, not holding the bond" \
            bond="$CONF_BOND_NAME" marker="$f" deadline="$deadline"
        return 1
    fi
    log info network "bond flip in progress by the node agent, leaving the bond alone" \
        bond="$CONF_BOND_NAME" marker="$f" deadline="$deadline"
    return 0
}

# network_assemble: bond, slaves, VLANs and addresses. Also used by boot recovery.
# Returns non-zero on the first host command that fails.
network_assemble() {
    bond_ensure || return 1
    bond_ensure_slaves || return 1
    bond_ensure_active_has_carrier || return 1
    vlan_ensure storage "$CONF_STORAGE_VLAN_ID" "$CONF_STORAGE_IP" || return 1
    if [[ -n $CONF_MGMT_VLAN_ID && -n $CONF_MGMT_IP ]]; then
        vlan_ensure management "$CONF_MGMT_VLAN_ID" "$CONF_MGMT_IP" || return 1
    fi
    return 0
}

bond_ensure() {
    local b=$CONF_BOND_NAME s
    if ip -d link show dev "$b" >/dev/null 2>&1; then
        if [[ $(operstate "$b") == down ]]; then
            log warn network "bond is down, bringing it up" bond="$b"
            host_do network ip link set dev "$b" up || return 1
        fi
        return 0
    fi
    log warn network "bond missing, creating it" bond="$b" mode="$CONF_BOND_MODE" \
        miimon="$CONF_BOND_MIIMON" slaves="$CONF_BOND_SLAVES"
    host_do network ip link add "$b" type bond mode "$CONF_BOND_MODE" miimon "$CONF_BOND_MIIMON" || return 1
    for s in $CONF_BOND_SLAVES; do
        bond_enslave "$s" || return 1
    done
    host_do network ip link set dev "$b" up || return 1
    log info network "bond created" bond="$b" mode="$CONF_BOND_MODE"
}

# The bonding driver only takes a slave that is down.
bond_enslave() {
    local s=$1 b=$CONF_BOND_NAME
    host_do network ip link set dev "$s" down || return 1
    host_do network ip link set dev "$s" master "$b" || return 1
    host_do network ip link set dev "$s" up || return 1
}

# A NIC swap or a udev rename leaves a slave outside the bond; put it back.
bond_ensure_slaves() {
    local s
    bond_read "$CONF_BOND_NAME"
    if ((BOND_PRESENT == 0)); then
        log error network "bond status file missing" path="/proc/net/bonding/$CONF_BOND_NAME"
        NET_STATE=degraded
        return 0
    fi
    for s in $CONF_BOND_SLAVES; do
        if [[ " $BOND_SLAVES_NOW " != *" $s "* ]]; then
            log warn network "slave missing from bond, re-enslaving" bond="$CONF_BOND_NAME" slave="$s"
            if [[ $(operstate "$s") == absent ]]; then
                log error network "slave interface does not exist" slave="$s"
                NET_STATE=degraded
                continue
            fi
            bond_enslave "$s" || return 1
        fi
    done
    bond_read "$CONF_BOND_NAME"
}

# In active-backup the driver should fail over by itself, but with miimon=0 on early images it
# never noticed a dead port (VXR-77): if the active slave has no carrier, pick one that has.
bond_ensure_active_has_carrier() {
    local s cand=""
    ((BOND_PRESENT == 1)) || return 0
    [[ $BOND_MODE_NOW == active-backup ]] || return 0
    if [[ -n $BOND_ACTIVE_NOW && $(carrier "$BOND_ACTIVE_NOW") == 1 ]]; then
        return 0
    fi
    for s in $BOND_SLAVES_NOW; do
        if [[ $s != "$BOND_ACTIVE_NOW" && $(carrier "$s") == 1 ]]; then
            cand=$s
            break
        fi
    done
    if [[ -z $cand ]]; then
        log error network "no bond slave has carrier" bond="$CONF_BOND_NAME" slaves="$BOND_SLAVES_NOW"
        NET_STATE=degraded
        return 0
    fi
    log warn network "active slave has no carrier, switching" bond="$CONF_BOND_NAME" \
        from="${BOND_ACTIVE_NOW:-none}" to="$cand"
    host_do network ip link set dev "$CONF_BOND_NAME" type bond active_slave "$cand" || return 1
    bond_read "$CONF_BOND_NAME"
}

# Compare the active slave with the one recorded on the Node last time; a change is a failover.
# The annotation says `none` for a bond without an active slave (802.3ad, or no slave up).
bond_watch_failover() {
    ((BOND_PRESENT == 1)) || return 0
    local now=${BOND_ACTIVE_NOW:-none}
    if [[ -n $S_ANN_BOND_ACTIVE && $now != "$S_ANN_BOND_ACTIVE" ]]; then
        log warn network "bond failover detected" bond="$CONF_BOND_NAME" \
            from="$S_ANN_BOND_ACTIVE" to="$now"
        log_block "/proc/net/bonding/$CONF_BOND_NAME" "$BOND_RAW"
    fi
    if [[ $now != "$S_ANN_BOND_ACTIVE" ]]; then
        annotate "$NODE_NAME" "bond-active=$now"
        S_ANN_BOND_ACTIVE=$now
    fi
}

# bond-flip.<node> in the cluster-state ConfigMap: action=mode|active;value=...;state=requested
bond_apply_flip_request() {
    local req=$S_BOND_FLIP action value state rc=0 msg=""
    [[ -n $req ]] || return 0
    state=$(blob_get "$req" state)
    [[ $state == requested ]] || return 0
    action=$(blob_get "$req" action)
    value=$(blob_get "$req" value)
    log info network "bond flip requested" bond="$CONF_BOND_NAME" action="$action" value="$value" \
        id="$(blob_get "$req" id)"
    case $action in
        active)
            if msg=$(bond_active_refused "$CONF_BOND_NAME" "$value"); then
                rc=1
            elif ! host_do network ip link set dev "$CONF_BOND_NAME" type bond active_slave "$value"; then
                rc=1; msg="ip link set active_slave failed"
            fi
            ;;
        mode)
            if [[ " $BOND_MODES " != *" $value "* ]]; then
                rc=1; msg="unknown bond mode"
            elif [[ $value == "$BOND_MODE_NOW" ]]; then
                msg="already in mode $value"
            elif ! bond_change_mode "$value"; then
                rc=1; msg="mode change failed"
            fi
            ;;
        *) rc=1; msg="unknown action" ;;
    esac
    req=$(blob_set "$req" "done" "$(now_epoch)")
    if ((rc == 0)); then
        req=$(blob_set "$req" state applied)
        req=$(blob_del "$req" msg)
        [[ -z $msg ]] || req=$(blob_set "$req" msg "$msg")
        log info network "bond flip applied" bond="$CONF_BOND_NAME" action="$action" value="$value"
    else
        req=$(blob_set "$req" state failed)
        req=$(blob_set "$req" msg "$msg")
        log error network "bond flip failed" bond="$CONF_BOND_NAME" action="$action" value="$value" reason="$msg"
        NET_STATE=degraded
    fi
    cm_patch "$CLUSTER_CM" "bond-flip.${NODE_NAME}" "$req"
    bond_read "$CONF_BOND_NAME"
    if [[ ${BOND_ACTIVE_NOW:-none} != "$S_ANN_BOND_ACTIVE" ]]; then
        annotate "$NODE_NAME" "bond-active=${BOND_ACTIVE_NOW:-none}"
        S_ANN_BOND_ACTIVE=${BOND_ACTIVE_NOW:-none}
    fi
}

# bond_active_refused BOND SLAVE: after bond_read BOND, prints why SLAVE cannot be made the active
# slave and succeeds, or fails when it can. Used by flip requests and by step bond-set-active.
bond_active_refused() {
    local b=$1 s=$2
    if [[ " $BOND_SLAVES_NOW " != *" $s "* ]]; then
        printf '%s' "not a slave of $b"
    elif [[ $BOND_MODE_NOW != active-backup && $BOND_MODE_NOW != balance-tlb && $BOND_MODE_NOW != balance-alb ]]; then
        printf '%s' "mode $BOND_MODE_NOW has no active slave"
    elif [[ $(carrier "$s") != 1 ]]; then
        printf '%s' "$s has no carrier"
    else
        return 1
    fi
}

# The kernel refuses a mode change while the bond is up or has slaves: take it apart first.
bond_change_mode() {
    local mode=$1 b=$CONF_BOND_NAME s
    log warn network "changing bond mode, traffic on the bond stops briefly" bond="$b" \
        from="$BOND_MODE_NOW" to="$mode"
    host_do network ip link set dev "$b" down || return 1
    for s in $BOND_SLAVES_NOW; do
        host_do network ip link set dev "$s" nomaster || return 1
    done
    if ! host_do network ip link set dev "$b" type bond mode "$mode"; then
        # Put the bond back the way it was rather than leave the node without a network.
        for s in $CONF_BOND_SLAVES; do bond_enslave "$s" || true; done
        host_do network ip link set dev "$b" up || true
        return 1
    fi
    for s in $CONF_BOND_SLAVES; do
        bond_enslave "$s" || return 1
    done
    host_do network ip link set dev "$b" up || return 1
}

# vlan_ensure PURPOSE ID CIDR: <bond>.<id> exists, is up and carries CIDR.
vlan_ensure() {
    local purpose=$1 id=$2 cidr=$3 name="${CONF_BOND_NAME}.$2" addrs
    if ! ip -d link show dev "$name" >/dev/null 2>&1; then
        log warn network "VLAN missing, creating it" vlan="$name" id="$id" purpose="$purpose"
        host_do network ip link add link "$CONF_BOND_NAME" name "$name" type vlan id "$id" || return 1
    fi
    if [[ $(operstate "$name") == down ]]; then
        host_do network ip link set dev "$name" up || return 1
    fi
    addrs=$(ip addr show dev "$name" 2>/dev/null) || addrs=""
    if [[ $addrs != *" inet ${cidr} "* ]]; then
        log warn network "VLAN address missing, adding it" vlan="$name" address="$cidr" purpose="$purpose"
        host_do network ip addr add "$cidr" dev "$name" || return 1
    fi
    return 0
}

# network_summary: NET_* values for the node status blob.
network_summary() {
    local sv="${CONF_BOND_NAME}.${CONF_STORAGE_VLAN_ID}"
    NET_BOND_MODE=${BOND_MODE_NOW:-unknown}
    NET_BOND_ACTIVE=${BOND_ACTIVE_NOW:-none}
    NET_SLAVES=$BOND_SLAVE_SUMMARY
    NET_STORAGE_VLAN="${sv}:$(operstate "$sv")"
    NET_MGMT_VLAN=""
    if [[ -n $CONF_MGMT_VLAN_ID ]]; then
        NET_MGMT_VLAN="${CONF_BOND_NAME}.${CONF_MGMT_VLAN_ID}:$(operstate "${CONF_BOND_NAME}.${CONF_MGMT_VLAN_ID}")"
    fi
    [[ $BOND_MII_NOW == up ]] || NET_STATE=degraded
    [[ $NET_STORAGE_VLAN == *:up ]] || NET_STATE=degraded
    if [[ $NET_STATE != ok ]]; then
        log warn network "network degraded" bond="$CONF_BOND_NAME" mii="${BOND_MII_NOW:-none}" \
            storage_vlan="$NET_STORAGE_VLAN" slaves="$NET_SLAVES"
    fi
}

# network_observe: while Nodewright owns the steady-state network (takeover.sh), what the network
# step reports without acting: the bond as it is. No host command, no annotation: Nodewright
# assembles, fails over and keeps vx-rail.io/bond-active itself. (At the end of the file so that
# the line numbers the error trap logs for the other functions stay as they were.)
network_observe() {
    bond_read "$CONF_BOND_NAME"
    ((BOND_PRESENT == 1)) || NET_STATE=degraded
}
