# shellcheck shell=bash disable=SC2034  # globals set here are read by the other lib/*.sh files
# Bootstrap: the first node that finds no cluster-state ConfigMap creates it and is the primary
# (it runs the LINSTOR controller). Every later node joins: it adds itself to the member list
# and labels itself.
#
# Joining rewrites the whole member list from the snapshot. Two nodes joining in the same
# iteration can drop each other; each re-adds itself on its next iteration when it does not
# find itself in the list, so the list converges (VXR-141).

bootstrap_run() {
    local now role joined
    now=$(now_epoch)

    if ((S_CLUSTER_EXISTS == 0)); then
        bootstrap_init_cluster "$now"
        return 0
    fi

    if [[ -z $(member_field "$S_MEMBERS" "$NODE_NAME" node) ]]; then
        # New here. On a single-node site a newcomer waits as "joining" until a migration takes
        # it in; on a multi-node site it is a member straight away.
        if [[ $S_PRIMARY == "$NODE_NAME" ]]; then
            role=primary
        elif [[ $S_TOPOLOGY == multi ]]; then
            role=member
        else
            role=joining
        fi
        bootstrap_join "$role" "$now"
        return 0
    fi

    # Known member: keep the member row's IP current (a re-addressed node, VXR-212).
    role=$(member_field "$S_MEMBERS" "$NODE_NAME" role)
    if [[ $(member_field "$S_MEMBERS" "$NODE_NAME" storage_ip) != "$CONF_STORAGE_IP" ]]; then
        joined=$(member_field "$S_MEMBERS" "$NODE_NAME" joined)
        log warn bootstrap "storage IP changed, updating member list" \
            old="$(member_field "$S_MEMBERS" "$NODE_NAME" storage_ip)" new="$CONF_STORAGE_IP"
        S_MEMBERS=$(member_set "$S_MEMBERS" "$NODE_NAME" "$CONF_STORAGE_IP" "$role" "$joined")
        cm_patch "$CLUSTER_CM" members "$S_MEMBERS"
    fi
    if [[ $S_LABEL_ROLE != "$role" ]]; then
        label "$NODE_NAME" "role=$role"
        S_LABEL_ROLE=$role
    fi
    S_ROLE=$role
    bootstrap_ensure_node_cm
    # The primary keeps the network plan in step with the member list.
    if [[ $S_PRIMARY == "$NODE_NAME" ]]; then
        local plan
        plan=$(network_plan_json "$S_MEMBERS")
        if [[ $plan != "$S_NETPLAN" ]]; then
            log info bootstrap "network plan updated" members="$(member_names "$S_MEMBERS" | paste -sd, -)"
            cm_patch "$CLUSTER_CM" network-plan "$plan"
            S_NETPLAN=$plan
        fi
    fi
}

# bootstrap_observe: while Nodewright owns bootstrap (takeover.sh), what the bootstrap step would
# have concluded without acting: a member's role is its member row's. Nothing is written.
bootstrap_observe() {
    if [[ -n $(member_field "$S_MEMBERS" "$NODE_NAME" node) ]]; then
        S_ROLE=$(member_field "$S_MEMBERS" "$NODE_NAME" role)
    fi
}

bootstrap_init_cluster() {
    local now=$1 cluster members plan topology=single replicas=1
    # A site built multi-node from day one has SITE_TOPOLOGY=multi on its first node: no migration.
    if [[ $CONF_SITE_TOPOLOGY == multi ]]; then
        topology=multi
        replicas=2
    fi
    cluster="primary=${NODE_NAME};topology=${topology};replicas=${replicas};storage_pool=${CONF_STORAGE_POOL};created=${now};schema=4"
    members=$(member_set "" "$NODE_NAME" "$CONF_STORAGE_IP" primary "$now")
    plan=$(network_plan_json "$members")
    log info bootstrap "no cluster state found, initialising the site with this node as primary" \
        configmap="$CLUSTER_CM"
    if ! cm_create "$CLUSTER_CM" cluster "$cluster" members "$members" network-plan "$plan" 2>/dev/null; then
        # Another node got there first (AlreadyExists). It is the primary; join next iteration.
        log warn bootstrap "cluster state was created by another node meanwhile, will join next iteration"
        return 0
    fi
    label "$NODE_NAME" role=primary
    S_CLUSTER_EXISTS=1
    S_CLUSTER=$cluster
    S_MEMBERS=$members
    S_NETPLAN=$plan
    S_PRIMARY=$NODE_NAME
    S_TOPOLOGY=$topology
    S_REPLICAS=$replicas
    S_ROLE=primary
    S_LABEL_ROLE=primary
    bootstrap_ensure_node_cm
    log info bootstrap "site initialised" primary="$NODE_NAME" topology="$topology" replicas="$replicas"
}

bootstrap_join() {
    local role=$1 now=$2
    log info bootstrap "joining site" primary="${S_PRIMARY:-none}" role="$role" storage_ip="$CONF_STORAGE_IP"
    bootstrap_check_plan
    S_MEMBERS=$(member_set "$S_MEMBERS" "$NODE_NAME" "$CONF_STORAGE_IP" "$role" "$now")
    cm_patch "$CLUSTER_CM" members "$S_MEMBERS"
    label "$NODE_NAME" "role=$role"
    S_ROLE=$role
    S_LABEL_ROLE=$role
    bootstrap_ensure_node_cm
}

# A node whose VLAN IDs differ from the site's plan still joins (a field tech fixes node.conf),
# but says so loudly.
bootstrap_check_plan() {
    local plan_vlan
    plan_vlan=$(network_plan_storage_vlan "$S_NETPLAN")
    if [[ -n $plan_vlan && $plan_vlan != "$CONF_STORAGE_VLAN_ID" ]]; then
        log error bootstrap "storage VLAN differs from the site network plan" \
            plan="$plan_vlan" node_conf="$CONF_STORAGE_VLAN_ID"
    fi
}

bootstrap_ensure_node_cm() {
    ((S_NODE_CM_EXISTS == 0)) || return 0
    if cm_create "$NODE_CM" script-version "$VXR_VERSION" heartbeat "$(now_rfc3339)" 2>/dev/null; then
        log info bootstrap "node ConfigMap created" configmap="$NODE_CM"
    else
        log warn bootstrap "node ConfigMap could not be created (exists?)" configmap="$NODE_CM"
    fi
    S_NODE_CM_EXISTS=1
}

# network_plan_json MEMBERS-CSV -> the site network plan, one line of JSON.
# Bond and VLAN settings are this (the primary's) node.conf: sites are built from one template.
network_plan_json() {
    local members=$1 nodes="" sep="" n ip role
    while read -r n; do
        [[ -n $n ]] || continue
        ip=$(member_field "$members" "$n" storage_ip)
        role=$(member_field "$members" "$n" role)
        nodes+="${sep}{\"name\":$(json_str "$n"),\"storageIp\":$(json_str "$ip"),\"role\":$(json_str "$role")}"
        sep=","
    done < <(member_names "$members")
    local mgmt=null slaves="" s
    sep=""
    for s in $CONF_BOND_SLAVES; do
        slaves+="${sep}$(json_str "$s")"
        sep=","
    done
    [[ -z $CONF_MGMT_VLAN_ID ]] || mgmt="{\"id\":${CONF_MGMT_VLAN_ID}}"
    printf '{"version":1,"bond":{"name":%s,"mode":%s,"miimon":%s,"slaves":[%s]},"storageVlan":{"id":%s,"prefixLength":%s},"mgmtVlan":%s,"nodes":[%s]}' \
        "$(json_str "$CONF_BOND_NAME")" "$(json_str "$CONF_BOND_MODE")" "$CONF_BOND_MIIMON" "$slaves" \
        "$CONF_STORAGE_VLAN_ID" "${CONF_STORAGE_IP#*/}" "$mgmt" "$nodes"
}

# network_plan_storage_vlan JSON -> the storage VLAN id in the plan
network_plan_storage_vlan() {
    local json=$1
    [[ $json =~ \"storageVlan\":\{\"id\":([0-9]+) ]] && printf '%s' "${BASH_REMATCH[1]}"
    return 0
}
