# shellcheck shell=bash
# Logging.
#
# Two generations of log line are in the field and the bridge has to read both:
#   VXR_LOG_FORMAT=legacy  script 3.x:  "<date> [INFO] component: text (k=v, k=v)"
#   VXR_LOG_FORMAT=kv      script 4.x:  ts=... level=info node=... component=... msg="..." k=v
# Sites still on the 3.x log pipeline (grep-based alerting, VXR-188) set legacy; do not change
# the legacy line shape, the alert rules match on it.
#
# Raw host-tool output is copied into the log between marker lines, unchanged, so support can
# see exactly what the tool said:
#   ----- BEGIN <command as run> -----
#   ----- END <command as run> -----

# Quote a kv value when it needs it: empty, or contains space, quote, backslash, '=' or newline.
kv_value() {
    local v=$1
    v=${v//$'\r'/}
    if [[ -z $v || $v == *[[:space:]\"\\=]* ]]; then
        v=${v//\\/\\\\}
        v=${v//\"/\\\"}
        v=${v//$'\n'/\\n}
        v=${v//$'\t'/\\t}
        printf '"%s"' "$v"
    else
        printf '%s' "$v"
    fi
}

# log LEVEL COMPONENT MESSAGE [KEY=VALUE ...]
#   LEVEL: info | warn | error
log() {
    local level=$1 comp=$2 msg=$3 kv k v line first=1
    shift 3
    if [[ $VXR_LOG_FORMAT == legacy ]]; then
        # 3.x: free text. Values went in brackets after the sentence.
        msg=${msg//$'\n'/ }
        line="${comp}: ${msg}"
        if (($#)); then
            line+=" ("
            for kv in "$@"; do
                ((first)) || line+=", "
                line+="${kv//$'\n'/ }"
                first=0
            done
            line+=")"
        fi
        printf '%s [%s] %s\n' "$(date)" "${level^^}" "$line" >&3
    else
        msg=${msg//\\/\\\\}
        msg=${msg//\"/\\\"}
        msg=${msg//$'\n'/\\n}
        line="ts=$(date -u +%Y-%m-%dT%H:%M:%SZ) level=${level} node=${NODE_NAME} component=${comp} msg=\"${msg}\""
        for kv in "$@"; do
            k=${kv%%=*}
            v=${kv#*=}
            line+=" ${k}=$(kv_value "$v")"
        done
        printf '%s\n' "$line" >&3
    fi
}

# log_block COMMAND-TEXT OUTPUT: copy a host tool's output into the log verbatim.
log_block() {
    local cmd=$1 out=$2
    printf -- '----- BEGIN %s -----\n' "$cmd" >&3
    if [[ -n $out ]]; then
        printf '%s\n' "${out%$'\n'}" >&3
    fi
    printf -- '----- END %s -----\n' "$cmd" >&3
}

log_start() {
    log info main "vx-rail-node-init starting" version="$VXR_VERSION" mode="$1" \
        root="${VXR_ROOT:-/}" namespace="$VXR_NAMESPACE" interval="$VXR_INTERVAL"
}

# ERR trap: which line failed. set -E carries it into every function.
on_err() {
    local rc=$1 line=$2 cmd=$3
    log error "${CURRENT_STEP:-main}" "command failed" file="${BASH_SOURCE[1]##*/}" \
        func="${FUNCNAME[1]:-main}" line="$line" rc="$rc" cmd="$cmd"
}
