# shellcheck shell=bash disable=SC2034  # globals set here are read by the other lib/*.sh files
# The snapshot: everything the iteration decides from, read once at the top.
#
# Nothing below re-reads these; steps that change cluster state write it and carry on with the
# values they read here. Re-reading per step was tried in 4.3 and reverted: it tripled the API
# calls per site and the edge links could not take it (VXR-260). The price is that a node acts
# on state up to one iteration old, and two nodes can act on the same old state.

snapshot_read() {
    # First, so that every node's reads stay in the same order as before the takeover existed.
    takeover_read || return 1

    S_CLUSTER_EXISTS=0
    S_CLUSTER=""
    S_MEMBERS=""
    S_NETPLAN=""
    S_LINSTOR_NODES=""
    S_UPGRADE=""
    S_MIGRATION=""
    S_DESIRED_VERSION=""
    S_BOND_FLIP=""
    if cm_exists "$CLUSTER_CM"; then
        S_CLUSTER_EXISTS=1
        S_CLUSTER=$(cm_get "$CLUSTER_CM" cluster) || true
        S_MEMBERS=$(cm_get "$CLUSTER_CM" members) || true
        S_NETPLAN=$(cm_get "$CLUSTER_CM" network-plan) || true
        S_LINSTOR_NODES=$(cm_get "$CLUSTER_CM" linstor-nodes) || true
        S_UPGRADE=$(cm_get "$CLUSTER_CM" upgrade) || true
        S_MIGRATION=$(cm_get "$CLUSTER_CM" migration) || true
        S_DESIRED_VERSION=$(cm_get "$CLUSTER_CM" desired-storage-version) || true
        S_BOND_FLIP=$(cm_get "$CLUSTER_CM" "bond-flip.${NODE_NAME}") || true
    fi
    S_PRIMARY=$(blob_get "$S_CLUSTER" primary)
    S_TOPOLOGY=$(blob_get "$S_CLUSTER" topology)
    S_REPLICAS=$(blob_get "$S_CLUSTER" replicas)

    S_NODE_CM_EXISTS=0
    S_BOOT_RECOVERY=""
    S_TAKEOVER_ACK=""
    local node_keys node_read_failed=0
    if cm_exists "$NODE_CM"; then
        S_NODE_CM_EXISTS=1
        # One read for two keys: the takeover acknowledgement (a number, one line), then the
        # boot-recovery blob.
        if node_keys=$(k get configmap "$NODE_CM" -n "$VXR_NAMESPACE" \
            -o 'jsonpath={.data.takeover-generation}{"\n"}{.data.boot-recovery}' 2>/dev/null); then
            S_TAKEOVER_ACK=${node_keys%%$'\n'*}
            [[ $node_keys != *$'\n'* ]] || S_BOOT_RECOVERY=${node_keys#*$'\n'}
        else
            node_read_failed=1
        fi
    fi
    # A lost takeover ConfigMap on a node that acknowledged one: nothing below may act.
    takeover_check_lost "$node_read_failed" || return 1

    S_ANN_STATE=$(node_annotation "$NODE_NAME" state) || true
    S_ANN_UPGRADE=$(node_annotation "$NODE_NAME" upgrade-state) || true
    S_ANN_BOND_ACTIVE=$(node_annotation "$NODE_NAME" bond-active) || true
    S_ANN_BOOT_ID=$(node_annotation "$NODE_NAME" boot-id) || true
    S_LABEL_ROLE=$(node_label "$NODE_NAME" role) || true
    S_LABEL_READY=$(node_label "$NODE_NAME" storage-ready) || true
    S_TAINTS=$(node_jsonpath "$NODE_NAME" '{.spec.taints}') || true
    S_UNSCHEDULABLE=$(node_jsonpath "$NODE_NAME" '{.spec.unschedulable}') || true

    # The primary also reads its peers' node ConfigMaps: migration preflight needs them.
    declare -gA S_PEER_STATUS=()
    if [[ $S_PRIMARY == "$NODE_NAME" ]]; then
        local peer
        while read -r peer; do
            [[ -n $peer && $peer != "$NODE_NAME" ]] || continue
            S_PEER_STATUS[$peer]=$(cm_get "vx-rail-node-${peer}" status) || S_PEER_STATUS[$peer]=""
        done < <(member_names "$S_MEMBERS")
    fi

    # Own role: the label, else what the member list says.
    S_ROLE=$S_LABEL_ROLE
    [[ -n $S_ROLE ]] || S_ROLE=$(member_field "$S_MEMBERS" "$NODE_NAME" role)

    # Boot: a boot id different from the one recorded after the last recovery means a reboot.
    BOOT_ID_NOW=$(boot_id) || BOOT_ID_NOW=unknown
    BOOT_ID_LAST=$(read_host_file /var/lib/vx-rail/last-boot-id 2>/dev/null) || BOOT_ID_LAST=""
    BOOT_PENDING=0
    [[ $BOOT_ID_NOW == "$BOOT_ID_LAST" ]] || BOOT_PENDING=1
    # 3.x kept the recovered boot id only on the Node. A node upgraded from 3.x (or with a wiped
    # /var/lib/vx-rail) whose annotation matches this boot has recovered already.
    if ((BOOT_PENDING == 1)) && [[ -z $BOOT_ID_LAST && $S_ANN_BOOT_ID == "$BOOT_ID_NOW" ]]; then
        log info snapshot "boot id found on the Node only, recording it on the host" boot_id="$BOOT_ID_NOW"
        mkdir -p "$STATE_DIR"
        printf '%s\n' "$BOOT_ID_NOW" >"$STATE_DIR/last-boot-id"
        BOOT_ID_LAST=$BOOT_ID_NOW
        BOOT_PENDING=0
    fi

    # While Nodewright owns boot recovery it records a recovered boot as the script does, in the
    # Node's vx-rail.io/boot-id annotation: a boot with that id is recovered, and the script keeps
    # its own record in step so that it does not recover the same boot again if it is handed back.
    if ((BOOT_PENDING == 1)) && takeover_operator boot-recovery && [[ -n $S_ANN_BOOT_ID &&
        $S_ANN_BOOT_ID == "$BOOT_ID_NOW" ]]; then
        log info snapshot "boot recovered by nodewright, recording the boot id on the host" \
            boot_id="$BOOT_ID_NOW"
        mkdir -p "$STATE_DIR"
        printf '%s\n' "$BOOT_ID_NOW" >"$STATE_DIR/last-boot-id"
        BOOT_ID_LAST=$BOOT_ID_NOW
        BOOT_PENDING=0
    fi

    # A node on which the script has never finished a boot recovery, and that has no trace of one
    # (no last-boot-id, no boot-id annotation, no boot-recovery record), is starting for the first
    # time: there is nothing to recover, so the boot id is recorded and recovery is skipped.
    BOOT_FIRST_START=0
    if ((BOOT_PENDING == 1)) && [[ -z $BOOT_ID_LAST && -z $S_ANN_BOOT_ID && -z $S_BOOT_RECOVERY &&
        $BOOT_ID_NOW != unknown ]]; then
        log info snapshot "first start on this node, recording the boot id without recovery" \
            boot_id="$BOOT_ID_NOW"
        mkdir -p "$STATE_DIR"
        printf '%s\n' "$BOOT_ID_NOW" >"$STATE_DIR/last-boot-id"
        BOOT_ID_LAST=$BOOT_ID_NOW
        BOOT_PENDING=0
        BOOT_FIRST_START=1
    fi

    log info snapshot "cluster state read" cluster_cm="$S_CLUSTER_EXISTS" primary="${S_PRIMARY:-none}" \
        topology="${S_TOPOLOGY:-none}" role="${S_ROLE:-none}" \
        upgrade="$(blob_get "$S_UPGRADE" state)" migration="$(blob_get "$S_MIGRATION" phase)" \
        boot_pending="$BOOT_PENDING" cordoned="${S_UNSCHEDULABLE:-false}"
}

# Is this node inside the per-node part of the storage upgrade (per the snapshot)? While it is,
# the storage and boot steps leave the satellite, modules and resources to the upgrade machine.
# An upgrade Nodewright runs (owner=operator) counts while it is on this node, rolling back
# included, by the key or by this node's upgrade-state annotation that Nodewright mirrors: its
# agent has the satellite stopped and the modules out on purpose.
node_in_upgrade() {
    local st ann
    st=$(blob_get "$S_UPGRADE" state)
    if [[ $(blob_get "$S_UPGRADE" owner) == operator ]]; then
        [[ -n $st ]] && ! upgrade_is_terminal "$st" && [[ $st != PENDING ]] || return 1
        [[ $(blob_get "$S_UPGRADE" node) == "$NODE_NAME" ]] && return 0
        ann=$(blob_get "${S_ANN_UPGRADE:-}" state)
        upgrade_is_per_node "$ann" || [[ $ann == ROLLING_BACK ]]
        return
    fi
    [[ $(blob_get "$S_UPGRADE" node) == "$NODE_NAME" ]] && upgrade_is_per_node "$st"
}

# Is a migration running (per the snapshot)?
migration_active() {
    local ph
    ph=$(blob_get "$S_MIGRATION" phase)
    [[ -n $ph && $ph != COMPLETED && $ph != ROLLED_BACK && $ph != FAILED ]]
}
