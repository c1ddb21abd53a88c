# shellcheck shell=bash
# LINSTOR / DRBD storage.
#
# Every node: DRBD modules loaded, linstor-satellite running, `drbdadm status` read and reported.
# The primary (which runs linstor-controller; the linstor client talks to the controller on
# localhost, so only the primary calls `linstor`): registers nodes, creates their storage pools,
# places replicas up to the site's replica count, and keeps the last `linstor node list` table in
# the cluster-state ConfigMap for support.

storage_run() {
    STORAGE_SATELLITE=unknown
    if takeover_operator storage; then takeover_skip storage storage
    elif node_in_upgrade; then
        log info storage "node is in the storage upgrade, leaving services and modules alone" \
            upgrade_state="$(blob_get "$S_UPGRADE" state)"
    elif ((BOOT_PENDING == 1)); then
        log info storage "reboot detected, boot recovery brings storage up"
    else
        storage_ensure_services
    fi
    STORAGE_SATELLITE=$(systemctl is-active linstor-satellite 2>/dev/null) || true
    STORAGE_SATELLITE=${STORAGE_SATELLITE:-unknown}
    if [[ $S_PRIMARY == "$NODE_NAME" && -n $S_CLUSTER ]] && ! node_in_upgrade; then
        if takeover_operator storage; then storage_report_linstor_nodes; else storage_primary_reconcile; fi
    fi

    drbd_read
    if ((DRBD_OK == 0)); then
        log warn storage "drbdadm status failed" modules="$(module_loaded drbd && echo loaded || echo missing)"
    else
        drbd_log_progress storage
        if ! drbd_local_uptodate; then
            log warn storage "local DRBD replicas not UpToDate" resources="$DRBD_RES_COUNT" \
                uptodate="$DRBD_UPTODATE_COUNT"
        fi
    fi
}

storage_ensure_services() {
    if ! module_loaded drbd; then
        log warn storage "DRBD module not loaded, loading it"
        host_do storage modprobe drbd
        host_do storage modprobe drbd_transport_tcp
    fi
    local st
    st=$(systemctl is-active linstor-satellite 2>/dev/null) || true
    if [[ $st != active ]]; then
        log warn storage "linstor-satellite not running, starting it" state="${st:-unknown}"
        host_do storage systemctl start linstor-satellite
    fi
    if [[ $S_PRIMARY == "$NODE_NAME" ]]; then
        st=$(systemctl is-active linstor-controller 2>/dev/null) || true
        if [[ $st != active ]]; then
            log warn storage "linstor-controller not running, starting it" state="${st:-unknown}"
            host_do storage systemctl start linstor-controller
        fi
    fi
}

# Nodes the primary looks after outside a migration: itself, and on a multi-node site every
# member that is not waiting to be migrated in.
storage_managed_nodes() {
    local n role
    printf '%s\n' "$NODE_NAME"
    [[ $S_TOPOLOGY == multi ]] || return 0
    migration_active && return 0
    while read -r n; do
        [[ -n $n && $n != "$NODE_NAME" ]] || continue
        role=$(member_field "$S_MEMBERS" "$n" role)
        [[ $role == joining ]] || printf '%s\n' "$n"
    done < <(member_names "$S_MEMBERS")
}

storage_primary_reconcile() {
    local nodes pools n ip state pool
    if ! capture nodes linstor --no-color node list; then
        log error storage "linstor controller not answering" cmd="linstor --no-color node list"
        return 0
    fi
    if [[ $nodes != "$S_LINSTOR_NODES" ]]; then
        log info storage "linstor node list changed"
        log_block "linstor --no-color node list" "$nodes"
        cm_patch "$CLUSTER_CM" linstor-nodes "$nodes"
        S_LINSTOR_NODES=$nodes
    fi
    pool=$CONF_STORAGE_POOL
    capture pools linstor --no-color storage-pool list || pools=""

    while read -r n; do
        [[ -n $n ]] || continue
        state=$(linstor_select "$nodes" Node State | awk -F'\t' -v n="$n" '$1 == n { print $2 }')
        if [[ -z $state ]]; then
            ip=$(member_field "$S_MEMBERS" "$n" storage_ip)
            ip=${ip%/*}
            [[ -n $ip ]] || { log warn storage "member has no storage IP, not registering" node="$n"; continue; }
            log info storage "registering LINSTOR satellite" node="$n" ip="$ip"
            host_do storage linstor --no-color node create "$n" "$ip" --node-type satellite
            continue
        fi
        if [[ $state != Online ]]; then
            log warn storage "LINSTOR satellite not online" node="$n" state="$state"
            continue
        fi
        if [[ -z $(linstor_select "$pools" StoragePool Node | awk -F'\t' -v n="$n" -v p="$pool" '$1 == p && $2 == n') ]]; then
            log info storage "creating storage pool" node="$n" pool="$pool" vg="$CONF_STORAGE_VG"
            host_do storage linstor --no-color storage-pool create lvmthin "$n" "$pool" "$CONF_STORAGE_VG"
        fi
    done < <(storage_managed_nodes)

    [[ $S_TOPOLOGY == multi ]] || return 0
    migration_active && return 0
    storage_place_replicas "${S_REPLICAS:-2}" "$(storage_managed_nodes | sort | paste -sd' ' -)" "$nodes"
}

# storage_place_replicas COUNT "NODES" NODE-TABLE: every resource definition gets COUNT replicas,
# on the first online NODES (name order) that lack one.
storage_place_replicas() {
    local want=$1 candidates=$2 nodes=$3 rds res res_list have n placed=0
    capture rds linstor --no-color resource-definition list || return 0
    capture res_list linstor --no-color resource list || return 0
    while read -r res; do
        [[ -n $res ]] || continue
        have=$(linstor_select "$res_list" ResourceName Node | awk -F'\t' -v r="$res" '$1 == r' | wc -l)
        for n in $candidates; do
            ((have < want)) || break
            if linstor_select "$res_list" ResourceName Node | awk -F'\t' -v r="$res" -v n="$n" '$1 == r && $2 == n { f = 1 } END { exit !f }'; then
                continue
            fi
            if [[ $(linstor_select "$nodes" Node State | awk -F'\t' -v n="$n" '$1 == n { print $2 }') != Online ]]; then
                continue
            fi
            log info storage "placing replica" resource="$res" node="$n" replicas="$have" want="$want"
            host_do storage linstor --no-color resource create "$n" "$res" --storage-pool "$CONF_STORAGE_POOL"
            have=$((have + 1))
            placed=$((placed + 1))
        done
        if ((have < want)); then
            log warn storage "resource has fewer replicas than the site wants" resource="$res" \
                replicas="$have" want="$want"
        fi
    done < <(linstor_select "$rds" ResourceName)
    ((placed == 0)) || log info storage "replicas placed" count="$placed"
}

# storage_report_linstor_nodes: while Nodewright owns the steady-state storage (takeover.sh), the
# primary's part that only observes: the controller's node table read and kept in the cluster-state
# key linstor-nodes when it changed (the same read and report storage_primary_reconcile starts
# with), without registering, creating pools or placing replicas. (At the end of the file so that
# the line numbers the error trap logs for the other functions stay as they were.)
storage_report_linstor_nodes() {
    local nodes
    if ! capture nodes linstor --no-color node list; then
        log error storage "linstor controller not answering" cmd="linstor --no-color node list"
        return 0
    fi
    if [[ $nodes != "$S_LINSTOR_NODES" ]]; then
        log info storage "linstor node list changed"
        log_block "linstor --no-color node list" "$nodes"
        cm_patch "$CLUSTER_CM" linstor-nodes "$nodes"
        S_LINSTOR_NODES=$nodes
    fi
}
