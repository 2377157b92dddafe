# The lupe command end to end on the real metal-tag photos: help, init,
# ingesting the 249 files twice (stored once), broken files rejected one by
# one with reasons, listing with filters, status and fsck.
source "$(dirname "$0")/../lib/tap.sh"
lupe() { "$LUPE_BIN" "$@"; }
IMAGES="$LUPE_SHARED/datasets/metal-tags/images"

out=$(lupe --help); rc=$?
expect_eq "lupe --help exits 0" 0 "$rc"
for c in init ingest images fsck status version help; do
    expect_match "lupe --help lists $c" "^  $c " "$out"
    h=$(lupe "$c" --help); rc=$?
    expect_eq "lupe $c --help exits 0" 0 "$rc"
    expect_match "lupe $c --help shows usage" "usage: lupe $c" "$h"
done
lupe frobnicate >/dev/null 2>"$TAP_TMP/err"; rc=$?
expect_eq "unknown command exits 2" 2 "$rc"
expect_match "unknown command is named" "unknown command 'frobnicate'" "$(cat "$TAP_TMP/err")"
lupe ingest --bogus x >/dev/null 2>&1; expect_eq "unknown flag exits 2" 2 "$?"
expect_match "version names commit and sqlite" "commit .*sqlite" "$(lupe version | tr '\n' ' ')"

ws="$TAP_TMP/ws"
out=$(lupe init "$ws"); rc=$?
expect_eq "init exits 0" 0 "$rc"
check "init made .lupe/lupe.db" test -f "$ws/.lupe/lupe.db"
lupe init "$ws" >/dev/null 2>&1; expect_eq "init twice fails" 1 "$?"
(cd "$TAP_TMP" && "$LUPE_BIN" images >/dev/null 2>"$TAP_TMP/err"); rc=$?
expect_eq "no workspace is an error" 1 "$rc"
expect_match "no workspace message" "no lupe workspace" "$(cat "$TAP_TMP/err")"

# Broken files next to the real ones: empty, text, truncated, corrupt.
bad="$TAP_TMP/bad"; mkdir -p "$bad"
: >"$bad/empty.jpg"
echo "not an image" >"$bad/readme.jpg"
first=$(ls "$IMAGES/bad"/*.jpg | head -1)
size=$(stat -c %s "$first")
head -c $((size / 2)) "$first" >"$bad/truncated.jpg"
{ head -c $((size / 2)) "$first"; printf '\xff\xd9'; tail -c +$((size / 2 + 3)) "$first"; } >"$bad/corrupt.jpg"
mkdir "$bad/a folder"

cd "$ws"
lupe ingest --source metal-tags --tag line=3 "$IMAGES" "$bad" >"$TAP_TMP/out" 2>"$TAP_TMP/err"; rc=$?
expect_eq "first ingest exits 3 (some rejected)" 3 "$rc"
expect_match "first ingest summary" "253 files .*: 249 stored \(.*\), 0 duplicate, 4 rejected" "$(cat "$TAP_TMP/out")"
err=$(cat "$TAP_TMP/err")
expect_match "empty file rejected by name" "rejected: .*/empty.jpg: .*empty file" "$err"
expect_match "text file rejected by name" "rejected: .*/readme.jpg: .*not a JPEG or PNG" "$err"
expect_match "truncated file rejected by name" "rejected: .*/truncated.jpg: " "$err"
expect_match "corrupt file rejected by name" "rejected: .*/corrupt.jpg: " "$err"
expect_eq "exactly four rejections" 4 "$(grep -c '^rejected: ' "$TAP_TMP/err")"

lupe ingest "$IMAGES" >"$TAP_TMP/out" 2>&1; rc=$?
expect_eq "second ingest exits 0" 0 "$rc"
expect_match "second ingest stores nothing" "249 files .*: 0 stored \(.*\), 249 duplicate, 0 rejected" "$(cat "$TAP_TMP/out")"
expect_eq "objects on disk" 249 "$(find "$ws/.lupe/objects" -type f | wc -l)"

n=$(lupe images 2>/dev/null | tail -n +2 | wc -l)
expect_eq "images lists 249" 249 "$n"
n=$(lupe images --tag line=3 2>/dev/null | tail -n +2 | wc -l)
expect_eq "tag filter keeps all tagged" 249 "$n"
n=$(lupe images --tag line=4 2>/dev/null | wc -l)
expect_eq "tag filter drops others" 0 "$n"
json=$(lupe images --json --limit 2)
expect_eq "json limit 2" 2 "$(printf '%s' "$json" | grep -c '"id": ')"
expect_match "json has dims and tags" '"width": 450' "$json"
expect_match "json tags object" '"line": "3"' "$json"
expect_match "json source" '"source": "metal-tags"' "$json"
lupe images --tag nokey >/dev/null 2>&1; expect_eq "bad tag filter exits 2" 2 "$?"
lupe ingest --tag 'lot=a,b' "$first" >/dev/null 2>&1; expect_eq "a comma in a tag value is refused" 2 "$?"

st=$(lupe status --json)
expect_match "status counts images" '"images": 249' "$st"
expect_match "status counts jpeg" '"jpeg": 249' "$st"

out=$(lupe fsck); rc=$?
expect_eq "fsck exits 0" 0 "$rc"
expect_match "fsck summary" "249 images, 249 objects .*: 0 errors, 0 warnings" "$out"

# Damage one object: fsck must notice and say which.
obj=$(find "$ws/.lupe/objects" -type f | head -1)
chmod u+w "$obj"; printf 'x' >>"$obj"
out=$(lupe fsck 2>&1); rc=$?
expect_eq "fsck on damage exits 1" 1 "$rc"
expect_match "fsck names the damaged object" "object [0-9a-f]{64}: its bytes hash to" "$out"
finish
