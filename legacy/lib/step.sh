# shellcheck shell=bash
# Step mode: `vx-rail-node-init.sh step NAME [ARGS...]` runs exactly one host step for Nodewright,
# with the commands (and the helpers: host_do, logging) the script itself uses for it, and exits:
#   0  done (the mutation ran, or its effect was already there: "already done"), or the facts read
#   1  failed (a host command failed, or the step refused to act)
#   2  bad usage: unknown step or wrong arguments (one line on stderr, nothing run)
# Standard output carries only what the step is meant to print (the read steps' tool output);
# the log goes to standard error. Step mode reads no snapshot, runs no kubectl, writes no
# ConfigMap and does not read node.conf: everything it needs is in its arguments.
#
# Every mutating step first reads the state it would change and does nothing when the effect is
# already there, so Nodewright can retry a step safely.

STEP_NAMES="linstor-node-create linstor-node-delete storage-pool-create resource-create resource-delete bond-set-active drbd-status linstor-node-list linstor-storage-pool-list linstor-resource-list"

# step_args NAME -> the arguments NAME takes, as a usage string (empty for none); fails for an
# unknown step.
step_args() {
    case $1 in
        linstor-node-create) printf '%s' '<node> <ip>' ;;
        linstor-node-delete) printf '%s' '<node>' ;;
        storage-pool-create) printf '%s' '<node> <pool> <vg/thinpool>' ;;
        resource-create) printf '%s' '<node> <resource> <pool>' ;;
        resource-delete) printf '%s' '<node> <resource>' ;;
        bond-set-active) printf '%s' '<bond> <slave>' ;;
        drbd-status | linstor-node-list | linstor-storage-pool-list | linstor-resource-list) ;;
        *) return 1 ;;
    esac
}

# step_main NAME [ARGS...]: validates, runs the step, exits with its status. Never returns.
step_main() {
    local name=${1:-} spec rc=0
    local -a want=()
    if [[ -z $name ]]; then
        printf 'usage: %s step <name> [args...] (steps: %s)\n' "${0##*/}" "${STEP_NAMES// /, }" >&2
        exit 2
    fi
    shift
    if ! spec=$(step_args "$name"); then
        printf '%s: unknown step "%s" (steps: %s)\n' "${0##*/}" "$name" "${STEP_NAMES// /, }" >&2
        exit 2
    fi
    read -r -a want <<<"$spec" || true
    # Arguments end up on host command lines: no option look-alikes, no whitespace, no globs.
    if (($# != ${#want[@]})) || ! step_args_valid "$@"; then
        printf 'usage: %s step %s%s\n' "${0##*/}" "$name" "${spec:+ $spec}" >&2
        exit 2
    fi

    # The log goes to stderr: stdout is the step's output.
    exec 3>&2
    log_start step
    "step_${name//-/_}" "$@" || rc=$?
    if ((rc == 0)); then
        log info step "step finished" step="$name" outcome=ok rc=0
        exit 0
    fi
    log error step "step finished" step="$name" outcome=error rc=1
    exit 1
}

# step_args_valid ARGS...: every argument is a plain word (letters, digits, . _ : / -, not
# starting with a dash).
step_args_valid() {
    local arg
    for arg in "$@"; do
        [[ $arg =~ ^[A-Za-z0-9][A-Za-z0-9._:/-]*$ ]] || return 1
    done
}

# step_read VAR CMD [ARGS...]: run a read-only host command, stdout into VAR. A failure is logged
# (its stdout as a raw block; its stderr passes through to the log) and returned as 1.
step_read() {
    local __var=$1 __out __rc=0
    shift
    __out=$("$@") || __rc=$?
    printf -v "$__var" '%s' "$__out"
    if ((__rc != 0)); then
        log error step "host command failed" cmd="$*" rc="$__rc"
        log_block "$*" "$__out"
        return 1
    fi
}

# step_print TEXT: a read step's output, with one trailing newline.
step_print() {
    [[ -z $1 ]] || printf '%s\n' "$1"
}

# step_already NAME ARGS...
step_already() {
    local name=$1
    shift
    log info step "already done" step="$name" args="$*"
}

# step_refused NAME REASON
step_refused() {
    log error step "step refused" step="$1" reason="$2"
}

# linstor_has TABLE COL1 VALUE1 [COL2 VALUE2]: the table has a data row with these values.
linstor_has() {
    local table=$1 rows
    rows=$(linstor_select "$table" "$2" "${4:-$2}")
    awk -F'\t' -v a="$3" -v b="${5:-$3}" '$1 == a && $2 == b { f = 1 } END { exit !f }' <<<"$rows"
}

# --- mutating steps ------------------------------------------------------------------------------

# linstor-node-create NODE IP: as the primary registers a satellite (storage.sh, migration.sh).
step_linstor_node_create() {
    local node=$1 ip=$2 nodes rows addr
    step_read nodes linstor --no-color node list || return 1
    rows=$(linstor_select "$nodes" Node Addresses)
    if linstor_has "$nodes" Node "$node"; then
        addr=$(awk -F'\t' -v n="$node" '$1 == n { print $2; exit }' <<<"$rows")
        if [[ $addr == "$ip" || $addr == "$ip:"* || $addr == "[$ip]:"* || $addr == "$ip "* ]]; then
            step_already linstor-node-create "$node" "$ip"
            return 0
        fi
        step_refused linstor-node-create "node $node is registered with another address: $addr"
        return 1
    fi
    host_do step linstor --no-color node create "$node" "$ip" --node-type satellite || return 1
}

# linstor-node-delete NODE: as migration rollback undoes a registration.
step_linstor_node_delete() {
    local node=$1 nodes
    step_read nodes linstor --no-color node list || return 1
    if ! linstor_has "$nodes" Node "$node"; then
        step_already linstor-node-delete "$node"
        return 0
    fi
    host_do step linstor --no-color node delete "$node" || return 1
}

# storage-pool-create NODE POOL VG/THINPOOL: as the primary creates a member's pool.
step_storage_pool_create() {
    local node=$1 pool=$2 vg=$3 pools
    step_read pools linstor --no-color storage-pool list || return 1
    if linstor_has "$pools" StoragePool "$pool" Node "$node"; then
        step_already storage-pool-create "$node" "$pool" "$vg"
        return 0
    fi
    host_do step linstor --no-color storage-pool create lvmthin "$node" "$pool" "$vg" || return 1
}

# resource-create NODE RESOURCE POOL: as the primary places a replica.
step_resource_create() {
    local node=$1 res=$2 pool=$3 list
    step_read list linstor --no-color resource list || return 1
    if linstor_has "$list" ResourceName "$res" Node "$node"; then
        step_already resource-create "$node" "$res" "$pool"
        return 0
    fi
    host_do step linstor --no-color resource create "$node" "$res" --storage-pool "$pool" || return 1
}

# resource-delete NODE RESOURCE: as migration rollback removes a replica.
step_resource_delete() {
    local node=$1 res=$2 list
    step_read list linstor --no-color resource list || return 1
    if ! linstor_has "$list" ResourceName "$res" Node "$node"; then
        step_already resource-delete "$node" "$res"
        return 0
    fi
    host_do step linstor --no-color resource delete "$node" "$res" || return 1
}

# bond-set-active BOND SLAVE: as a requested `active` bond flip (network.sh), with its checks.
step_bond_set_active() {
    local bond=$1 slave=$2 why
    bond_read "$bond"
    if ((BOND_PRESENT == 0)); then
        step_refused bond-set-active "bond status file /proc/net/bonding/$bond missing"
        return 1
    fi
    if [[ $BOND_ACTIVE_NOW == "$slave" ]]; then
        step_already bond-set-active "$bond" "$slave"
        return 0
    fi
    if why=$(bond_active_refused "$bond" "$slave"); then
        step_refused bond-set-active "$why"
        return 1
    fi
    host_do step ip link set dev "$bond" type bond active_slave "$slave" || return 1
}

# --- read steps: the tool's output on stdout -------------------------------------------------------

step_drbd_status() {
    local out
    step_read out drbdadm status all || return 1
    step_print "$out"
}

step_linstor_node_list() {
    local out
    step_read out linstor --no-color node list || return 1
    step_print "$out"
}

step_linstor_storage_pool_list() {
    local out
    step_read out linstor --no-color storage-pool list || return 1
    step_print "$out"
}

step_linstor_resource_list() {
    local out
    step_read out linstor --no-color resource list || return 1
    step_print "$out"
}
