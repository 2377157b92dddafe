# Durability of the data plane: `lupe import` and `lupe dataset create` are
# killed with SIGKILL at random moments. Afterwards fsck finds no errors,
# every dataset version listed loads completely, and re-running the command
# finishes the job.
source "$(dirname "$0")/../lib/tap.sh"
DS="$LUPE_SHARED/datasets/metal-tags"
KILLS=${LUPE_CRASH_KILLS:-12}
RANDOM=${LUPE_CRASH_SEED:-$$}
echo "# seed $RANDOM, $KILLS kills of each command"
ms() { echo $(( $(date +%s%N) / 1000000 )); }
import() { "$LUPE_BIN" -q -w "$1" import --format gt-csv --images "$DS/images" --classes scratch "$DS/labels.csv"; }
create() { "$LUPE_BIN" -q -w "$1" dataset create metal-tags --group-by 'image-(.*)-cropped'; }

# A template workspace with the images but no labels, copied for each run;
# and how long each command takes on this build.
tpl="$TAP_TMP/tpl"
"$LUPE_BIN" -q init "$tpl"
"$LUPE_BIN" -q -w "$tpl" ingest --include '*.jpg' "$DS/images" >/dev/null
cp -a "$tpl" "$TAP_TMP/timing"
t0=$(ms); import "$TAP_TMP/timing" >/dev/null 2>&1; t_import=$(( $(ms) - t0 ))
t0=$(ms); create "$TAP_TMP/timing" >/dev/null 2>&1; t_create=$(( $(ms) - t0 ))
echo "# import takes ${t_import} ms, dataset create ${t_create} ms"

kill_at() { # delay_ms command...
    local d=$1; shift
    "$@" >/dev/null 2>&1 &
    local pid=$!
    sleep "$((d / 1000)).$(printf '%03d' $((d % 1000)))"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

versions_load() { # ws: every listed version loads
    local ws=$1 v
    for v in $("$LUPE_BIN" -w "$ws" dataset list | awk '{print $1}'); do
        "$LUPE_BIN" -w "$ws" dataset show "$v" >/dev/null 2>&1 || { echo "# $v does not load"; return 1; }
    done
}

for i in $(seq 1 "$KILLS"); do
    ws="$TAP_TMP/ws$i"
    cp -a "$tpl" "$ws"
    d=$(( RANDOM % (t_import + 10) ))
    kill_at "$d" import "$ws"
    out=$("$LUPE_BIN" -w "$ws" fsck 2>&1)
    expect_eq "import killed at $d ms: fsck finds no errors" 0 "$?"
    q=$("$LUPE_BIN" -w "$ws" label queue 2>&1)
    n=$(echo "$q" | tail -1 | grep -oE '^[0-9]+')
    # Killed before the label set was made: nothing is labeled.
    echo "$q" | grep -q "no label set 'default'" && n=239
    check "import killed at $d ms: labels all there or none (queue $n)" test "$n" = 239 -o "$n" = 4
    import "$ws" >/dev/null 2>&1
    n=$("$LUPE_BIN" -w "$ws" label queue 2>&1 | tail -1 | grep -oE '^[0-9]+')
    expect_eq "import killed at $d ms: re-running it completes the labels" 4 "$n"

    d=$(( RANDOM % (t_create + 10) ))
    kill_at "$d" create "$ws"
    out=$("$LUPE_BIN" -w "$ws" fsck 2>&1)
    expect_eq "dataset create killed at $d ms: fsck finds no errors" 0 "$?"
    check "dataset create killed at $d ms: every listed version loads" versions_load "$ws"
    create "$ws" >/dev/null 2>&1
    expect_eq "dataset create killed at $d ms: re-running it gives metal-tags@1 once" "metal-tags@1" \
        "$("$LUPE_BIN" -w "$ws" dataset list | awk '{print $1}' | tr '\n' ' ' | sed 's/ $//')"
done
finish
