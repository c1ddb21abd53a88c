# shellcheck shell=bash disable=SC2034  # globals set here are read by the other lib/*.sh files
# Host access: node.conf, host files under $VXR_ROOT, running host tools, and parsing their output.

# --- node.conf ---------------------------------------------------------------------------------
# KEY=value lines. Parsed, never sourced: 3.x sourced it and a stray backtick in a field tech's
# edit ran on every node of a site (VXR-97).
load_node_conf() {
    local f="$VXR_ROOT/etc/vx-rail/node.conf" line key val
    CONF_BOND_NAME=bond0
    CONF_BOND_MODE=active-backup
    CONF_BOND_SLAVES=""
    CONF_BOND_MIIMON=100
    CONF_STORAGE_VLAN_ID=""
    CONF_STORAGE_IP=""
    CONF_MGMT_VLAN_ID=""
    CONF_MGMT_IP=""
    CONF_STORAGE_POOL=pool0
    CONF_STORAGE_VG=vg0/thinpool
    CONF_SITE_TOPOLOGY=single
    if [[ ! -r $f ]]; then
        log error config "node.conf not readable" path="$f"
        return 1
    fi
    while IFS= read -r line || [[ -n $line ]]; do
        line=${line%$'\r'}
        [[ $line =~ ^[[:space:]]*([A-Z_][A-Z0-9_]*)=(.*)$ ]] || continue
        key=${BASH_REMATCH[1]}
        val=${BASH_REMATCH[2]}
        val=${val%%[[:space:]]#*}
        val=${val#\"}; val=${val%\"}
        val=${val#\'}; val=${val%\'}
        case $key in
            BOND_NAME | BOND_MODE | BOND_SLAVES | BOND_MIIMON | STORAGE_VLAN_ID | STORAGE_IP | \
                MGMT_VLAN_ID | MGMT_IP | STORAGE_POOL | STORAGE_VG | SITE_TOPOLOGY)
                printf -v "CONF_${key}" '%s' "$val"
                ;;
            *) log warn config "unknown node.conf key ignored" key="$key" ;;
        esac
    done <"$f"
    if [[ -z $CONF_BOND_SLAVES || -z $CONF_STORAGE_VLAN_ID || -z $CONF_STORAGE_IP ]]; then
        log error config "node.conf needs BOND_SLAVES, STORAGE_VLAN_ID and STORAGE_IP" path="$f"
        return 1
    fi
    if [[ ! $CONF_STORAGE_IP =~ ^[0-9.]+/[0-9]+$ || ! $CONF_STORAGE_VLAN_ID =~ ^[0-9]+$ ||
        ! $CONF_BOND_MIIMON =~ ^[0-9]+$ ]] ||
        [[ -n $CONF_MGMT_VLAN_ID && ! $CONF_MGMT_VLAN_ID =~ ^[0-9]+$ ]]; then
        log error config "node.conf has a malformed IP, VLAN id or miimon" path="$f" \
            storage_ip="$CONF_STORAGE_IP" storage_vlan="$CONF_STORAGE_VLAN_ID" miimon="$CONF_BOND_MIIMON"
        return 1
    fi
}

# --- host files --------------------------------------------------------------------------------

# read_host_file PATH -> content, or fails (PATH is absolute on the host; $VXR_ROOT is added)
read_host_file() {
    local f="${VXR_ROOT}$1"
    [[ -r $f ]] || return 1
    local content
    content=$(<"$f") || return 1
    printf '%s' "$content"
}

boot_id() { read_host_file /proc/sys/kernel/random/boot_id; }

# carrier IF -> 1 or 0. A down interface has no readable carrier file: that is 0.
carrier() {
    local c
    c=$(read_host_file "/sys/class/net/$1/carrier" 2>/dev/null) || c=0
    [[ $c == 1 ]] && printf 1 || printf 0
}

# operstate IF -> up|down|unknown|lowerlayerdown|absent
operstate() {
    read_host_file "/sys/class/net/$1/operstate" 2>/dev/null || printf absent
}

module_loaded() {
    grep -q "^$1 " "${VXR_ROOT}/proc/modules" 2>/dev/null
}

# --- running host tools ------------------------------------------------------------------------

# host_do COMPONENT CMD [ARGS...]: run a mutating host command. On failure its output goes into
# the log as a raw block and its exit status is returned. Use as `host_do ... || return 1`.
host_do() {
    local comp=$1 out rc=0
    shift
    log info "$comp" "run" cmd="$*"
    out=$("$@" 2>&1) || rc=$?
    if ((rc != 0)); then
        log error "$comp" "host command failed" cmd="$*" rc="$rc"
        log_block "$*" "$out"
        return "$rc"
    fi
    return 0
}

# capture VAR CMD [ARGS...]: run a read-only command, stdout into VAR; returns its status.
capture() {
    local __var=$1 __out __rc=0
    shift
    __out=$("$@" 2>/dev/null) || __rc=$?
    printf -v "$__var" '%s' "$__out"
    return "$__rc"
}

# --- linstor tables ----------------------------------------------------------------------------
# `linstor --no-color ... list` prints box tables:
#   ┊ Node   ┊ NodeType  ┊ Addresses                 ┊ State  ┊
# Older clients print '|' instead of '┊'. linstor_select TABLE COL [COL...] prints the named
# columns of every data row, tab-separated.
linstor_select() {
    local table=$1
    shift
    printf '%s\n' "$table" | awk -v want="$*" '
        BEGIN { FS = "\t"; nw = split(want, w, " ") }
        {
            gsub(/┊/, "|")
            if ($0 !~ /^[ ]*\|/) next
            line = $0
            sub(/^[ ]*\|/, "", line)
            sub(/\|[ ]*$/, "", line)
            n = split(line, f, "|")
            for (i = 1; i <= n; i++) { gsub(/^[ ]+|[ ]+$/, "", f[i]) }
            if (!hdr) { for (i = 1; i <= n; i++) col[f[i]] = i; hdr = 1; next }
            out = ""
            for (j = 1; j <= nw; j++) out = out (j > 1 ? "\t" : "") ((w[j] in col) ? f[col[w[j]]] : "")
            print out
        }'
}

# --- drbdadm status ----------------------------------------------------------------------------
# drbd_parse STATUS-TEXT prints, tab-separated:
#   R <res> <role> <disk> <quorum yes|no> <suspended yes|no>
#   P <res> <peer> <connection> <peer-role> <replication> <peer-disk> <done-percent or ->
# The local disk is the worst volume's; a peer line covers its worst volume too.
drbd_parse() {
    printf '%s\n' "$1" | awk '
        BEGIN { OFS = "\t" }
        function worse(a, b) { return (a == "" || a == "UpToDate") ? b : a }
        function flushpeer() {
            if (peer != "")
                print "P", res, peer, (conn == "" ? "Connected" : conn), prole, \
                      (repl == "" ? (conn == "" ? "Established" : "Off") : repl), \
                      (pdisk == "" ? "DUnknown" : pdisk), (done == "" ? "-" : done)
            peer = ""
        }
        function flushres() {
            flushpeer()
            if (res != "") print "R", res, role, (disk == "" ? "DUnknown" : disk), quorum, susp
            res = ""
        }
        /^[ \t]*$/ { next }
        # drbdsetup comments, e.g. "# No currently configured DRBD found." with no resources up
        /^#/ { next }
        /^[^ ]/ {
            flushres()
            res = $1; role = ""; disk = ""; quorum = "yes"; susp = "no"
            for (i = 2; i <= NF; i++) {
                split($i, kv, ":")
                if (kv[1] == "role") role = kv[2]
                if (kv[1] == "suspended") susp = "yes"
            }
            next
        }
        /^  [^ ]/ {
            if ($0 ~ /(^| )disk:/) {
                for (i = 1; i <= NF; i++) {
                    split($i, kv, ":")
                    if (kv[1] == "disk") disk = worse(disk, kv[2])
                    if (kv[1] == "quorum" && kv[2] == "no") quorum = "no"
                }
                next
            }
            flushpeer()
            peer = $1; conn = ""; prole = ""; repl = ""; pdisk = ""; done = ""
            for (i = 2; i <= NF; i++) {
                split($i, kv, ":")
                if (kv[1] == "connection") conn = kv[2]
                if (kv[1] == "role") prole = kv[2]
            }
            next
        }
        /^    / {
            for (i = 1; i <= NF; i++) {
                split($i, kv, ":")
                if (kv[1] == "replication" && (repl == "" || repl == "Established")) repl = kv[2]
                if (kv[1] == "peer-disk") pdisk = worse(pdisk, kv[2])
                if (kv[1] == "done") done = kv[2]
            }
        }
        END { flushres() }'
}

# drbd_read: run `drbdadm status all` and fill
#   DRBD_OK (1 when the status could be read), DRBD_RAW, DRBD_PARSED,
#   DRBD_RES_COUNT, DRBD_UPTODATE_COUNT, DRBD_SYNCING (1 while any peer resyncs),
#   DRBD_ALL_PEERS_UPTODATE, DRBD_PRIMARIES (space-separated)
drbd_read() {
    DRBD_OK=1
    DRBD_RAW=""
    if ! capture DRBD_RAW drbdadm status all; then
        DRBD_OK=0
    fi
    DRBD_PARSED=$(drbd_parse "$DRBD_RAW")
    DRBD_RES_COUNT=0
    DRBD_UPTODATE_COUNT=0
    DRBD_SYNCING=0
    DRBD_ALL_PEERS_UPTODATE=1
    DRBD_PRIMARIES=""
    local t a b c d e f g
    while IFS=$'\t' read -r t a b c d e f g; do
        case $t in
            R)
                DRBD_RES_COUNT=$((DRBD_RES_COUNT + 1))
                if [[ $c == UpToDate || $c == Diskless ]]; then DRBD_UPTODATE_COUNT=$((DRBD_UPTODATE_COUNT + 1)); fi
                if [[ $b == Primary ]]; then DRBD_PRIMARIES+="${DRBD_PRIMARIES:+ }$a"; fi
                ;;
            P)
                if [[ $e == Sync* ]]; then DRBD_SYNCING=1; fi
                [[ $f == UpToDate || $f == Diskless ]] || DRBD_ALL_PEERS_UPTODATE=0
                : "$d" "$g"
                ;;
        esac
    done <<<"$DRBD_PARSED"
}

# drbd_local_uptodate: every local replica is UpToDate (after drbd_read)
drbd_local_uptodate() {
    ((DRBD_OK == 1 && DRBD_UPTODATE_COUNT == DRBD_RES_COUNT))
}

# drbd_log_progress COMPONENT: one log line per resync in progress (after drbd_read)
drbd_log_progress() {
    local comp=$1 t res peer conn prole repl pdisk pct
    while IFS=$'\t' read -r t res peer conn prole repl pdisk pct; do
        [[ $t == P && $repl == Sync* ]] || continue
        log info "$comp" "resync in progress" resource="$res" peer="$peer" replication="$repl" \
            peer_disk="$pdisk" done="$pct"
        : "$conn" "$prole"
    done <<<"$DRBD_PARSED"
}

# drbd_wait COMPONENT SECONDS: poll until every resource is UpToDate here and with every peer,
# at most SECONDS. Returns 0 when synced, 1 when still syncing at the deadline.
drbd_wait() {
    local comp=$1 budget=$2 waited=0
    while :; do
        drbd_read
        if drbd_local_uptodate && ((DRBD_ALL_PEERS_UPTODATE == 1 && DRBD_SYNCING == 0)); then
            log info "$comp" "all resources UpToDate" resources="$DRBD_RES_COUNT" waited="$waited"
            return 0
        fi
        drbd_log_progress "$comp"
        if ((waited >= budget)); then
            log warn "$comp" "resync not finished, will look again next iteration" \
                resources="$DRBD_RES_COUNT" uptodate="$DRBD_UPTODATE_COUNT" waited="$waited"
            return 1
        fi
        sleep "$VXR_POLL"
        waited=$((waited + VXR_POLL))
    done
}

# --- bonding -----------------------------------------------------------------------------------
# bond_read BOND: parse /proc/net/bonding/BOND into
#   BOND_PRESENT (0/1), BOND_RAW, BOND_MODE_NOW, BOND_ACTIVE_NOW, BOND_MII_NOW,
#   BOND_SLAVES_NOW (space-separated), BOND_SLAVE_SUMMARY ("eno1:up:0,eno2:down:3")
bond_read() {
    BOND_PRESENT=0
    BOND_RAW=""
    BOND_MODE_NOW=""
    BOND_ACTIVE_NOW=""
    BOND_MII_NOW=""
    BOND_SLAVES_NOW=""
    BOND_SLAVE_SUMMARY=""
    BOND_RAW=$(read_host_file "/proc/net/bonding/$1" 2>/dev/null) || return 0
    BOND_PRESENT=1
    local parsed
    parsed=$(printf '%s\n' "$BOND_RAW" | awk '
        /^Bonding Mode:/ {
            m = $0
            if (m ~ /active-backup/) mode = "active-backup"
            else if (m ~ /802\.3ad/) mode = "802.3ad"
            else if (m ~ /round-robin/) mode = "balance-rr"
            else if (m ~ /xor/) mode = "balance-xor"
            else if (m ~ /broadcast/) mode = "broadcast"
            else if (m ~ /transmit load balancing/) mode = "balance-tlb"
            else if (m ~ /adaptive load balancing/) mode = "balance-alb"
            else mode = "unknown"
        }
        /^Currently Active Slave:/ { active = $4 }
        /^MII Status:/ && !inslave { mii = $3 }
        /^Slave Interface:/ { inslave = 1; n++; name[n] = $3; smii[n] = "unknown"; fail[n] = 0 }
        /^MII Status:/ && inslave { smii[n] = $3 }
        /^Link Failure Count:/ && inslave { fail[n] = $4 }
        END {
            print "mode", mode
            print "active", (active == "None" ? "" : active)
            print "mii", mii
            s = ""; sum = ""
            for (i = 1; i <= n; i++) { s = s (i > 1 ? " " : "") name[i]; sum = sum (i > 1 ? "," : "") name[i] ":" smii[i] ":" fail[i] }
            print "slaves", s
            print "summary", sum
        }')
    local key val
    while read -r key val; do
        case $key in
            mode) BOND_MODE_NOW=$val ;;
            active) BOND_ACTIVE_NOW=$val ;;
            mii) BOND_MII_NOW=$val ;;
            slaves) BOND_SLAVES_NOW=$val ;;
            summary) BOND_SLAVE_SUMMARY=$val ;;
        esac
    done <<<"$parsed"
}
