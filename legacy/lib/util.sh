# shellcheck shell=bash
# Small helpers: time, key=value;key=value blobs, the CSV member list, JSON strings, versions.

now_epoch() { date -u +%s; }
now_rfc3339() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# --- blobs -------------------------------------------------------------------------------------
# A blob is "key=value;key=value". Keys are [a-z_]+; values never contain ';' or a newline
# (blob_clean makes sure). Order is kept; blob_set replaces in place or appends.

blob_clean() {
    local v=$1
    v=${v//;/,}
    v=${v//$'\n'/ }
    v=${v//$'\r'/}
    printf '%s' "$v"
}

# blob_get BLOB KEY -> value (empty when absent)
blob_get() {
    local blob=$1 key=$2 part
    local -a parts=()
    IFS=';' read -r -a parts <<<"$blob" || true
    for part in "${parts[@]}"; do
        if [[ ${part%%=*} == "$key" && $part == *=* ]]; then
            printf '%s' "${part#*=}"
            return 0
        fi
    done
    return 0
}

# blob_set BLOB KEY VALUE -> new blob
blob_set() {
    local blob=$1 key=$2 val part out="" found=0
    val=$(blob_clean "$3")
    local -a parts=()
    IFS=';' read -r -a parts <<<"$blob" || true
    for part in "${parts[@]}"; do
        [[ -n $part ]] || continue
        if [[ ${part%%=*} == "$key" ]]; then
            part="${key}=${val}"
            found=1
        fi
        out+="${out:+;}${part}"
    done
    ((found)) || out+="${out:+;}${key}=${val}"
    printf '%s' "$out"
}

# blob_del BLOB KEY -> new blob without KEY
blob_del() {
    local blob=$1 key=$2 part out=""
    local -a parts=()
    IFS=';' read -r -a parts <<<"$blob" || true
    for part in "${parts[@]}"; do
        [[ -n $part && ${part%%=*} != "$key" ]] || continue
        out+="${out:+;}${part}"
    done
    printf '%s' "$out"
}

# --- comma lists --------------------------------------------------------------------------------

# list_has "a,b,c" b
list_has() {
    local list=",$1," item=$2
    [[ -n $item && $list == *",${item},"* ]]
}

# list_add "a,b" c -> "a,b,c" (no duplicates)
list_add() {
    if list_has "$1" "$2"; then
        printf '%s' "$1"
    else
        printf '%s' "${1:+$1,}$2"
    fi
}

# list_words "a,b,c" -> "a b c"
list_words() { printf '%s' "${1//,/ }"; }

# --- the CSV member list -----------------------------------------------------------------------
# First line is the header "node,storage_ip,role,joined"; one line per member after it.

MEMBERS_HEADER="node,storage_ip,role,joined"

# member_names CSV -> names, one per line, in file order
member_names() {
    printf '%s\n' "$1" | awk -F, 'NR > 1 && $1 != "" { print $1 }'
}

# member_field CSV NODE FIELD(storage_ip|role|joined)
member_field() {
    printf '%s\n' "$1" | awk -F, -v n="$2" -v f="$3" '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        $1 == n && (f in col) { print $(col[f]); exit }'
}

# member_set CSV NODE STORAGE_IP ROLE JOINED -> CSV with the node's row added or replaced
member_set() {
    printf '%s\n' "$1" | awk -F, -v OFS=, -v h="$MEMBERS_HEADER" -v n="$2" -v ip="$3" -v r="$4" -v j="$5" '
        NR == 1 { print h; next }
        $1 == "" { next }
        $1 == n { print n, ip, r, j; done = 1; next }
        { print }
        END { if (NR == 0) print h; if (!done) print n, ip, r, j }'
}

# --- JSON --------------------------------------------------------------------------------------

# json_str VALUE -> a JSON string literal, quotes included
json_str() {
    local s
    # Control characters other than \n \t \r have no business in what we store; drop them.
    s=$(printf '%s' "$1" | LC_ALL=C tr -d '\000-\010\013\014\016-\037\177'; printf x)
    s=${s%x}
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\t'/\\t}
    s=${s//$'\r'/\\r}
    printf '"%s"' "$s"
}

# --- versions ----------------------------------------------------------------------------------

# version_gt A B: A is newer than B (Debian-ish dotted versions; sort -V is close enough for ours)
version_gt() {
    [[ $1 != "$2" ]] || return 1
    [[ $(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n 1) == "$1" ]]
}

# upstream part of a Debian version: 9.2.8-1 -> 9.2.8
upstream_version() {
    local v=${1#*:}
    printf '%s' "${v%-*}"
}
