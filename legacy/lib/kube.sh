# shellcheck shell=bash
# kubectl wrappers. The only cluster calls the script makes are listed in HOST-INTERFACE.md.

# KUBECTL may carry flags ("kubectl --kubeconfig /etc/...") so it is split into words.
k() {
    local -a kc=()
    read -r -a kc <<<"$KUBECTL"
    "${kc[@]}" "$@"
}

# cm_exists NAME
cm_exists() {
    k get configmap "$1" -n "$VXR_NAMESPACE" -o name >/dev/null 2>&1
}

# cm_get NAME KEY -> the value ("" when the key is absent); fails when the ConfigMap is missing.
cm_get() {
    local name=$1 key=$2
    # jsonpath needs the dots in a key escaped: bond-flip.edge-1 -> bond-flip\.edge-1
    k get configmap "$name" -n "$VXR_NAMESPACE" -o "jsonpath={.data.${key//./\\.}}" 2>/dev/null
}

# cm_patch NAME KEY VALUE [KEY VALUE ...]: merge-patch .data
cm_patch() {
    local name=$1 json="" sep=""
    shift
    while (($# >= 2)); do
        json+="${sep}$(json_str "$1"):$(json_str "$2")"
        sep=","
        shift 2
    done
    k patch configmap "$name" -n "$VXR_NAMESPACE" --type merge -p "{\"data\":{${json}}}" >/dev/null
}

# cm_create NAME KEY VALUE [KEY VALUE ...]
cm_create() {
    local name=$1
    local -a args=()
    shift
    while (($# >= 2)); do
        args+=("--from-literal=$1=$2")
        shift 2
    done
    k create configmap "$name" -n "$VXR_NAMESPACE" "${args[@]}" >/dev/null
}

# node_jsonpath NODE PATH
node_jsonpath() {
    k get node "$1" -o "jsonpath=$2" 2>/dev/null
}

# node_annotation NODE KEY  (KEY without the vx-rail.io/ prefix)
node_annotation() {
    node_jsonpath "$1" "{.metadata.annotations.vx-rail\\.io/$2}"
}

# node_label NODE KEY  (KEY without the vx-rail.io/ prefix)
node_label() {
    node_jsonpath "$1" "{.metadata.labels.vx-rail\\.io/$2}"
}

# annotate NODE KEY=VALUE ... (keys without the vx-rail.io/ prefix)
annotate() {
    local node=$1 kv v
    local -a args=()
    shift
    for kv in "$@"; do
        v=${kv#*=}
        args+=("vx-rail.io/${kv%%=*}=${v//$'\n'/ }")
    done
    k annotate node "$node" --overwrite "${args[@]}" >/dev/null
}

# label NODE KEY=VALUE ... (keys without the vx-rail.io/ prefix)
label() {
    local node=$1 kv
    local -a args=()
    shift
    for kv in "$@"; do
        args+=("vx-rail.io/${kv}")
    done
    k label node "$node" --overwrite "${args[@]}" >/dev/null
}

# taint_add NODE KEY VALUE  (NoSchedule)
taint_add() {
    k taint node "$1" --overwrite "$2=$3:NoSchedule" >/dev/null
}

# taint_del NODE KEY  (NoSchedule)
taint_del() {
    # An absent taint is an expected failure (callers check); keep kubectl's complaint out of the log.
    k taint node "$1" "$2:NoSchedule-" >/dev/null 2>&1
}

# taint_value TAINTS-JSON KEY -> the value of the NoSchedule taint KEY, or fails when absent.
# TAINTS-JSON is `{.spec.taints}`: [{"effect":"NoSchedule","key":"...","value":"..."}, ...]
taint_value() {
    local json=$1 key=$2
    printf '%s\n' "$json" | awk -v want="$key" '
        {
            gsub(/\},[ ]*\{/, "}\n{")
            n = split($0, objs, "\n")
            for (i = 1; i <= n; i++) {
                o = objs[i]
                if (index(o, "\"key\":\"" want "\"") == 0) continue
                if (index(o, "\"effect\":\"NoSchedule\"") == 0) continue
                v = ""
                if (match(o, /"value":"[^"]*"/)) v = substr(o, RSTART + 9, RLENGTH - 10)
                print v
                found = 1
            }
        }
        END { exit found ? 0 : 1 }'
}
