# shellcheck shell=bash
# Single -> multi-node migration, driven by the primary.
#
# A migration starts when the `migration` key of the cluster-state ConfigMap holds phase=PENDING:
# written by hand (`joining=...;replicas=...`), or by the primary itself when it sees members with
# role "joining" on a single-node site and no migration key at all. A migration that ended
# (COMPLETED, ROLLED_BACK, FAILED) is never restarted by the script: delete the key to retry.
#
# Phases, in order:
#   PENDING PREFLIGHT PREPARING_NETWORK JOINING_NODES REGISTERING_SATELLITES CREATING_STORAGE_POOLS
#   PLACING_REPLICAS WAITING_FOR_RESYNC FINALIZING COMPLETED
# and from any of them ROLLING_BACK -> ROLLED_BACK | FAILED.
#
# Every host action is appended to /var/lib/vx-rail/migration.journal; rollback undoes the
# journal backwards. The journal lives on the primary: if the primary is replaced mid-migration
# the new one cannot roll back (VXR-355).

MIG_PHASES="PENDING PREFLIGHT PREPARING_NETWORK JOINING_NODES REGISTERING_SATELLITES CREATING_STORAGE_POOLS PLACING_REPLICAS WAITING_FOR_RESYNC FINALIZING COMPLETED ROLLING_BACK ROLLED_BACK FAILED"
MIG_JOURNAL_NAME=migration.journal

migration_run() {
    [[ $S_PRIMARY == "$NODE_NAME" ]] || return 0
    local phase
    phase=$(blob_get "$S_MIGRATION" phase)

    # A migration Nodewright runs is mirrored here (owner=operator) so that every node holds its
    # upgrade while it runs; it is never driven from this script, whatever the takeover says.
    if [[ -n $phase && $(blob_get "$S_MIGRATION" owner) == operator ]]; then
        log info migration "migration owned by nodewright, not touching it" phase="$phase"
        return 0
    fi
    if [[ -z $phase ]]; then
        migration_maybe_start
        return 0
    fi
    if [[ " $MIG_PHASES " != *" $phase "* ]]; then
        log error migration "unknown migration phase, not touching it" phase="$phase"
        return 0
    fi
    case $phase in COMPLETED | ROLLED_BACK | FAILED) return 0 ;; esac

    MIG=$S_MIGRATION
    if [[ $(blob_get "$MIG" rollback) == requested && $phase != ROLLING_BACK ]]; then
        migration_fail "$phase" "rollback requested"
        return 0
    fi
    if [[ $phase == ROLLING_BACK ]]; then
        migration_rollback
        return 0
    fi
    migration_advance "$phase"
}

migration_maybe_start() {
    local n joining=""
    [[ $S_TOPOLOGY == single ]] || return 0
    while read -r n; do
        [[ -n $n ]] || continue
        if [[ $(member_field "$S_MEMBERS" "$n" role) == joining ]]; then
            joining=$(list_add "$joining" "$n")
        fi
    done < <(member_names "$S_MEMBERS")
    [[ -n $joining ]] || return 0
    MIG="phase=PENDING;source=${NODE_NAME};joining=${joining};replicas=2;since=$(now_epoch)"
    log info migration "nodes waiting to join a single-node site, migration requested" joining="$joining"
    cm_patch "$CLUSTER_CM" migration "$MIG"
    S_MIGRATION=$MIG
}

# migration_enter PHASE [MSG]: persist the new phase (ConfigMap) and journal it.
migration_enter() {
    local to=$1 msg=${2:-} from now
    from=$(blob_get "$MIG" phase)
    now=$(now_epoch)
    MIG=$(blob_set "$MIG" phase "$to")
    MIG=$(blob_set "$MIG" since "$now")
    MIG=$(blob_del "$MIG" msg)
    [[ -z $msg ]] || MIG=$(blob_set "$MIG" msg "$msg")
    cm_patch "$CLUSTER_CM" migration "$MIG"
    S_MIGRATION=$MIG
    migration_journal "$to" enter
    local -a extra=()
    [[ -z $msg ]] || extra=("msg=$msg")
    log info migration "migration phase changed" from="$from" to="$to" "${extra[@]}"
}

migration_journal() {
    mkdir -p "$STATE_DIR"
    printf '%s %s\n' "$(now_epoch)" "$*" >>"$STATE_DIR/$MIG_JOURNAL_NAME"
}

migration_joining() { list_words "$(blob_get "$MIG" joining)"; }

migration_advance() {
    local phase=$1 rc next since
    while :; do
        rc=0
        case $phase in
            PENDING)
                # A new migration starts a new journal.
                mkdir -p "$STATE_DIR"
                : >"$STATE_DIR/$MIG_JOURNAL_NAME"
                [[ -n $(blob_get "$MIG" source) ]] || MIG=$(blob_set "$MIG" source "$NODE_NAME")
                [[ -n $(blob_get "$MIG" replicas) ]] || MIG=$(blob_set "$MIG" replicas 2)
                MIG=$(blob_set "$MIG" started "$(now_epoch)")
                ;;
            PREFLIGHT) migration_preflight || rc=$? ;;
            PREPARING_NETWORK) migration_preparing_network || rc=$? ;;
            JOINING_NODES) migration_joining_nodes || rc=$? ;;
            REGISTERING_SATELLITES) migration_registering_satellites || rc=$? ;;
            CREATING_STORAGE_POOLS) migration_creating_storage_pools || rc=$? ;;
            PLACING_REPLICAS) migration_placing_replicas || rc=$? ;;
            WAITING_FOR_RESYNC) migration_waiting_for_resync || rc=$? ;;
            FINALIZING) migration_finalizing || rc=$? ;;
            COMPLETED) return 0 ;;
        esac
        case $rc in
            0)
                next=$(migration_next_phase "$phase")
                if [[ $next == COMPLETED ]]; then
                    MIG=$(blob_set "$MIG" finished "$(now_epoch)")
                fi
                migration_enter "$next"
                [[ $next != COMPLETED ]] || { log info migration "migration completed" joining="$(blob_get "$MIG" joining)"; return 0; }
                phase=$next
                ;;
            2)
                since=$(blob_get "$MIG" since)
                if (($(now_epoch) - ${since:-0} > VXR_MIGRATION_TIMEOUT)); then
                    migration_fail "$phase" "timed out after ${VXR_MIGRATION_TIMEOUT}s"
                fi
                return 0
                ;;
            *)
                migration_fail "$phase" "${MIG_ERR:-step failed}"
                return 0
                ;;
        esac
    done
}

migration_next_phase() {
    local p=$1 seen=0 x
    for x in $MIG_PHASES; do
        if ((seen)); then
            printf '%s' "$x"
            return 0
        fi
        if [[ $x == "$p" ]]; then seen=1; fi
    done
    return 0
}

migration_fail() {
    local phase=$1 msg=$2
    log error migration "migration failed, rolling back" phase="$phase" reason="$msg"
    MIG=$(blob_set "$MIG" failed_phase "$phase")
    migration_enter ROLLING_BACK "$msg"
    migration_rollback
}

# --- phases: return 0 done, 1 failed (MIG_ERR says why), 2 not yet ---------------------------------

migration_preflight() {
    local n st at now waiting=""
    now=$(now_epoch)
    for n in $(migration_joining); do
        st=${S_PEER_STATUS[$n]:-}
        at=$(blob_get "$st" at)
        if [[ -z $(member_field "$S_MEMBERS" "$n" node) ]]; then
            waiting+=" $n(not-a-member)"
        elif [[ -z $at ]] || ((now - at > VXR_HEARTBEAT_STALE)); then
            waiting+=" $n(no-heartbeat)"
        fi
    done
    if ! drbd_local_uptodate; then
        waiting+=" ${NODE_NAME}(storage-not-uptodate)"
    fi
    if [[ -n $waiting ]]; then
        log info migration "preflight waiting" waiting="${waiting# }"
        return 2
    fi
    log info migration "preflight passed" joining="$(blob_get "$MIG" joining)"
}

migration_preparing_network() {
    local n st plan_vlan want waiting=""
    plan_vlan=$(network_plan_storage_vlan "$S_NETPLAN")
    want="${CONF_BOND_NAME}.${plan_vlan:-$CONF_STORAGE_VLAN_ID}:up"
    for n in $(migration_joining); do
        st=${S_PEER_STATUS[$n]:-}
        if [[ $(blob_get "$st" net) != ok || $(blob_get "$st" storage_vlan) != "$want" ]]; then
            waiting+=" $n(net=$(blob_get "$st" net),vlan=$(blob_get "$st" storage_vlan))"
        fi
    done
    if [[ -n $waiting ]]; then
        log info migration "waiting for joining nodes' bond and storage VLAN" waiting="${waiting# }" want="$want"
        return 2
    fi
}

migration_joining_nodes() {
    local n nodes waiting=""
    if ! capture nodes k get nodes -o name; then
        MIG_ERR="kubectl get nodes failed"
        return 1
    fi
    for n in $(migration_joining); do
        if ! grep -qx "node/$n" <<<"$nodes"; then
            waiting+=" $n"
            continue
        fi
        if [[ $(node_label "$n" role) != joining ]]; then
            label "$n" role=joining || { MIG_ERR="label $n failed"; return 1; }
            migration_journal JOINING_NODES label "$n" joining
        fi
    done
    if [[ -n $waiting ]]; then
        log info migration "waiting for Node objects" waiting="${waiting# }"
        return 2
    fi
}

migration_registering_satellites() {
    local n nodes state ip waiting=""
    capture nodes linstor --no-color node list || { MIG_ERR="linstor node list failed"; return 1; }
    for n in $(migration_joining); do
        state=$(linstor_select "$nodes" Node State | awk -F'\t' -v n="$n" '$1 == n { print $2 }')
        if [[ -z $state ]]; then
            ip=$(member_field "$S_MEMBERS" "$n" storage_ip)
            host_do migration linstor --no-color node create "$n" "${ip%/*}" --node-type satellite ||
                { MIG_ERR="linstor node create $n failed"; return 1; }
            migration_journal REGISTERING_SATELLITES node-create "$n"
            waiting+=" $n(registered)"
        elif [[ $state != Online ]]; then
            waiting+=" $n($state)"
        fi
    done
    if [[ -n $waiting ]]; then
        log info migration "waiting for satellites to come online" waiting="${waiting# }"
        log_block "linstor --no-color node list" "$nodes"
        return 2
    fi
}

migration_creating_storage_pools() {
    local n pools pool=$CONF_STORAGE_POOL
    capture pools linstor --no-color storage-pool list || { MIG_ERR="linstor storage-pool list failed"; return 1; }
    for n in $(migration_joining); do
        if [[ -z $(linstor_select "$pools" StoragePool Node | awk -F'\t' -v n="$n" -v p="$pool" '$1 == p && $2 == n') ]]; then
            host_do migration linstor --no-color storage-pool create lvmthin "$n" "$pool" "$CONF_STORAGE_VG" ||
                { MIG_ERR="storage-pool create on $n failed"; return 1; }
            migration_journal CREATING_STORAGE_POOLS storage-pool-create "$n" "$pool"
        fi
    done
}

migration_placing_replicas() {
    local want rds res_list res have n
    want=$(blob_get "$MIG" replicas)
    capture rds linstor --no-color resource-definition list || { MIG_ERR="resource-definition list failed"; return 1; }
    capture res_list linstor --no-color resource list || { MIG_ERR="resource list failed"; return 1; }
    while read -r res; do
        [[ -n $res ]] || continue
        have=$(linstor_select "$res_list" ResourceName Node | awk -F'\t' -v r="$res" '$1 == r' | wc -l)
        for n in $(migration_joining); do
            ((have < want)) || break
            if linstor_select "$res_list" ResourceName Node | awk -F'\t' -v r="$res" -v n="$n" '$1 == r && $2 == n { f = 1 } END { exit !f }'; then
                continue
            fi
            host_do migration linstor --no-color resource create "$n" "$res" --storage-pool "$CONF_STORAGE_POOL" ||
                { MIG_ERR="resource create $res on $n failed"; return 1; }
            migration_journal PLACING_REPLICAS resource-create "$n" "$res"
            have=$((have + 1))
        done
    done < <(linstor_select "$rds" ResourceName)
}

migration_waiting_for_resync() {
    drbd_read
    if ((DRBD_OK == 0)); then
        MIG_ERR="drbdadm status failed"
        return 1
    fi
    if drbd_local_uptodate && ((DRBD_ALL_PEERS_UPTODATE == 1 && DRBD_SYNCING == 0)); then
        log info migration "new replicas are UpToDate" resources="$DRBD_RES_COUNT"
        return 0
    fi
    drbd_log_progress migration
    return 2
}

migration_finalizing() {
    local n joined
    S_CLUSTER=$(blob_set "$S_CLUSTER" topology multi)
    S_CLUSTER=$(blob_set "$S_CLUSTER" replicas "$(blob_get "$MIG" replicas)")
    for n in $(migration_joining); do
        joined=$(member_field "$S_MEMBERS" "$n" joined)
        S_MEMBERS=$(member_set "$S_MEMBERS" "$n" "$(member_field "$S_MEMBERS" "$n" storage_ip)" member "$joined")
    done
    cm_patch "$CLUSTER_CM" cluster "$S_CLUSTER" members "$S_MEMBERS" ||
        { MIG_ERR="cluster-state update failed"; return 1; }
    migration_journal FINALIZING topology multi
    for n in $(migration_joining); do
        label "$n" role=member || { MIG_ERR="label $n failed"; return 1; }
        migration_journal FINALIZING label "$n" member
    done
    S_TOPOLOGY=multi
}

# --- rollback ------------------------------------------------------------------------------------

migration_rollback() {
    local journal="$STATE_DIR/$MIG_JOURNAL_NAME" ts phase action a1 a2 failed="" n joined
    log warn migration "rolling back migration" failed_phase="$(blob_get "$MIG" failed_phase)"
    if [[ -r $journal ]]; then
        while read -r ts phase action a1 a2; do
            case $action in
                resource-create)
                    host_do migration linstor --no-color resource delete "$a1" "$a2" || failed+=" resource-delete:$a1/$a2"
                    ;;
                node-create)
                    host_do migration linstor --no-color node delete "$a1" || failed+=" node-delete:$a1"
                    ;;
                storage-pool-create)
                    # There is no storage-pool delete in our tooling; the pool goes with the node.
                    log info migration "storage pool left for node delete" node="$a1" pool="$a2"
                    ;;
                topology)
                    S_CLUSTER=$(blob_set "$S_CLUSTER" topology single)
                    S_CLUSTER=$(blob_set "$S_CLUSTER" replicas 1)
                    for n in $(migration_joining); do
                        joined=$(member_field "$S_MEMBERS" "$n" joined)
                        S_MEMBERS=$(member_set "$S_MEMBERS" "$n" "$(member_field "$S_MEMBERS" "$n" storage_ip)" joining "$joined")
                    done
                    cm_patch "$CLUSTER_CM" cluster "$S_CLUSTER" members "$S_MEMBERS" || failed+=" topology"
                    ;;
                label)
                    [[ $a2 == joining ]] || label "$a1" role=joining || failed+=" label:$a1"
                    ;;
            esac
            : "$ts" "$phase"
        done < <(tac "$journal")
    fi
    MIG=$(blob_set "$MIG" finished "$(now_epoch)")
    if [[ -n $failed ]]; then
        migration_enter FAILED "rollback failed:${failed}"
        log error migration "migration rollback failed, site needs attention" failed="${failed# }"
    else
        migration_enter ROLLED_BACK "$(blob_get "$MIG" msg)"
        log info migration "migration rolled back, site is single-node"
    fi
}
