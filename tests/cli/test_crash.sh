# Durability: `lupe ingest` is killed with SIGKILL at random moments. After
# every kill, `lupe fsck` must find no errors, and re-running the ingest must
# complete the workspace (all 249 metal-tag images, each stored once).
source "$(dirname "$0")/../lib/tap.sh"
IMAGES="$LUPE_SHARED/datasets/metal-tags/images"
KILLS=${LUPE_CRASH_KILLS:-24}
RANDOM=${LUPE_CRASH_SEED:-$$}
echo "# seed $RANDOM, $KILLS kills"

# How long a whole ingest takes on this build sets the range of kill times.
ws0="$TAP_TMP/ws0"
"$LUPE_BIN" -q init "$ws0"
t0=$(date +%s%N)
"$LUPE_BIN" -q -w "$ws0" ingest "$IMAGES" >/dev/null
full_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "# a full ingest takes ${full_ms} ms"

killed_mid=0
for i in $(seq 1 "$KILLS"); do
    ws="$TAP_TMP/ws$i"
    "$LUPE_BIN" -q init "$ws"
    # Kill at a random moment within the ingest's running time (plus start-up).
    delay_ms=$(( RANDOM % (full_ms + 20) ))
    "$LUPE_BIN" -q -w "$ws" ingest "$IMAGES" >/dev/null 2>&1 &
    pid=$!
    sleep "$((delay_ms / 1000)).$(printf '%03d' $((delay_ms % 1000)))"
    if kill -9 "$pid" 2>/dev/null; then killed_mid=$((killed_mid + 1)); fi
    wait "$pid" 2>/dev/null
    stored=$(find "$ws/.lupe/objects" -type f | wc -l)
    out=$("$LUPE_BIN" -w "$ws" fsck 2>&1); rc=$?
    expect_eq "kill $i at ${delay_ms} ms (${stored} objects on disk): fsck finds no errors" 0 "$rc"
    [ "$rc" -ne 0 ] && echo "$out" | sed 's/^/#   /' | head -20
    "$LUPE_BIN" -q -w "$ws" ingest "$IMAGES" >/dev/null 2>&1; rc=$?
    n=$("$LUPE_BIN" -w "$ws" status --json | grep -oE '"images": [0-9]+' | grep -oE '[0-9]+')
    expect_eq "kill $i: re-running the ingest completes the workspace" "0 249" "$rc $n"
done
out=$("$LUPE_BIN" -w "$TAP_TMP/ws1" fsck 2>&1)
expect_match "fsck after completion is clean" " 0 errors" "$out"
echo "# $killed_mid of $KILLS kills landed while ingest was running"
check "most kills landed mid-ingest" test "$killed_mid" -ge $((KILLS / 2))
finish
