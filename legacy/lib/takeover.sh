# shellcheck shell=bash disable=SC2034  # globals set here are read by the other lib/*.sh files
# The takeover contract: Nodewright takes workflows over from this script one at a time.
#
# Nodewright (and only Nodewright) writes the ConfigMap nodewright-takeover in $VXR_NAMESPACE:
#   generation       a positive integer, increased on every change
#   <workflow>       legacy | shadow | operator, for each of
#                    bootstrap migration storage-upgrade bond-flip taints boot-recovery
#                    network storage
# The script reads it once per iteration, in the snapshot, with one kubectl call. A missing or
# empty key, or an unknown value means `legacy`; an unknown value and a generation that is not a
# positive integer are logged (warn), never fatal. `shadow` acts exactly as `legacy` (Nodewright
# only watches); `operator` means Nodewright does the work and the script skips the workflow,
# saying so once per iteration. A ConfigMap that exists but cannot be read (anything but NotFound)
# fails the iteration: the script does not know what it may touch.
#
# The iteration's report acknowledges the generation it read (takeover-generation in the node
# ConfigMap), so that Nodewright knows when the script has seen a change.
#
# A missing ConfigMap means `legacy` only on a node that never acknowledged one (its node
# ConfigMap has no takeover-generation): a site Nodewright never took anything from. On a node
# that did, the ConfigMap was lost (deleted by hand, an etcd restore) while Nodewright may own a
# workflow, and deciding everything again would make two deciders: the iteration fails at init,
# as for an unreadable ConfigMap, until Nodewright writes it again (it does, at a new generation).
# The way back to pure legacy for good removes the acknowledgements too (docs/takeover.md,
# "Going back to pure legacy"); the snapshot reads them (takeover_check_lost).

TAKEOVER_CM=nodewright-takeover
TAKEOVER_WORKFLOWS="bootstrap migration storage-upgrade bond-flip taints boot-recovery network storage"

# takeover_read: fills TAKEOVER_EXISTS (0/1), TAKEOVER_GENERATION (the generation read; 0 when
# the ConfigMap is missing or its generation is not a positive integer) and TAKEOVER_MODE[wf].
# Fails only when the ConfigMap cannot be read for another reason than NotFound.
takeover_read() {
    local out rc=0 line key cur="" wf tpl val
    local -A seen=() raw=()
    declare -gA TAKEOVER_MODE=()
    TAKEOVER_EXISTS=0
    TAKEOVER_GENERATION=0
    for wf in $TAKEOVER_WORKFLOWS; do TAKEOVER_MODE[$wf]=legacy; done

    # One line per key, `key=value`, in this order; a missing key prints as `key=`.
    tpl='generation={.data.generation}{"\n"}'
    for wf in $TAKEOVER_WORKFLOWS; do tpl+="${wf}={.data.${wf}}{\"\\n\"}"; done
    out=$(k get configmap "$TAKEOVER_CM" -n "$VXR_NAMESPACE" -o "jsonpath=${tpl}" 2>&1) || rc=$?
    if ((rc != 0)); then
        [[ $out != *"(NotFound)"* ]] || return 0
        log error snapshot "takeover ConfigMap could not be read, not acting this iteration" \
            configmap="$TAKEOVER_CM" rc="$rc" error="$out"
        return 1
    fi
    TAKEOVER_EXISTS=1

    # A line that does not start a key not seen yet continues the previous value (a value with a
    # newline in it, which is then not a valid value).
    while IFS= read -r line; do
        key=${line%%=*}
        if [[ $line == *=* && " generation $TAKEOVER_WORKFLOWS " == *" $key "* && -z ${seen[$key]:-} ]]; then
            seen[$key]=1
            raw[$key]=${line#*=}
            cur=$key
        elif [[ -n $cur ]]; then
            raw[$cur]+=$'\n'"$line"
        fi
    done <<<"$out"

    val=${raw[generation]:-}
    if [[ $val =~ ^[1-9][0-9]{0,17}$ ]]; then
        TAKEOVER_GENERATION=$val
    else
        log warn snapshot "takeover generation is not a positive integer, acknowledging 0" \
            configmap="$TAKEOVER_CM" key=generation value="$val"
    fi
    for wf in $TAKEOVER_WORKFLOWS; do
        val=${raw[$wf]:-}
        case $val in
            "") ;;
            legacy | shadow | operator) TAKEOVER_MODE[$wf]=$val ;;
            *)
                log warn snapshot "unknown takeover mode, treating the workflow as legacy" \
                    configmap="$TAKEOVER_CM" key="$wf" value="$val"
                ;;
        esac
    done
    log info snapshot "takeover modes read" generation="$TAKEOVER_GENERATION" \
        bootstrap="${TAKEOVER_MODE[bootstrap]}" migration="${TAKEOVER_MODE[migration]}" \
        storage_upgrade="${TAKEOVER_MODE[storage-upgrade]}" bond_flip="${TAKEOVER_MODE[bond-flip]}" \
        taints="${TAKEOVER_MODE[taints]}" boot_recovery="${TAKEOVER_MODE[boot-recovery]}" \
        network="${TAKEOVER_MODE[network]}" storage="${TAKEOVER_MODE[storage]}"
}

# takeover_operator WORKFLOW: Nodewright owns WORKFLOW this iteration (the script skips it).
takeover_operator() {
    [[ ${TAKEOVER_MODE[$1]:-legacy} == operator ]]
}

# takeover_skip COMPONENT WORKFLOW: the one line a skipped workflow logs per iteration.
takeover_skip() {
    log info "$1" "workflow owned by nodewright, skipping" workflow="$2" mode=operator \
        generation="$TAKEOVER_GENERATION"
}

# takeover_check_lost READ_FAILED: called by the snapshot once it has read this node's ConfigMap
# (S_TAKEOVER_ACK, its takeover-generation; READ_FAILED 1 when that read failed). Fails when the
# takeover ConfigMap is missing and this node has acknowledged one, or when that cannot be known.
takeover_check_lost() {
    ((TAKEOVER_EXISTS == 0)) || return 0
    if (($1 != 0)); then
        log error snapshot "takeover ConfigMap is missing and this node's acknowledgement could not be read, not acting this iteration" \
            configmap="$TAKEOVER_CM" node_configmap="$NODE_CM"
        return 1
    fi
    [[ -n ${S_TAKEOVER_ACK:-} ]] || return 0
    log error snapshot "takeover ConfigMap is gone after this node acknowledged it, not acting this iteration: nodewright may own a workflow; it writes the ConfigMap again, or remove takeover-generation from the node ConfigMap to go back to pure legacy" \
        configmap="$TAKEOVER_CM" acknowledged="$S_TAKEOVER_ACK"
    return 1
}
