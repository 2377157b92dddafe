# lupe synth end to end: help, bad command lines, a YOLO folder with one
# label file per image and the boxes the summary counts, the same bytes for
# the same seed (also when a set is continued with --first), montages, and
# the folder read back by `lupe import --format yolo` and by --ingest.
source "$(dirname "$0")/../lib/tap.sh"
lupe() { "$LUPE_BIN" "$@"; }
IMAGES="$LUPE_SHARED/datasets/metal-tags/images"
T="$TAP_TMP"

expect_match "lupe --help lists synth" "^  synth " "$(lupe --help)"
h=$(lupe synth --help); rc=$?
expect_eq "synth --help exits 0" 0 "$rc"
for opt in --count --out --seed --first --size --classes --min --max --empty --engrave --quality --format \
    --montage --real --ingest --labelset; do
    expect_match "synth --help documents $opt" "^ +(-., )?$opt" "$h"
done

usage() { # NAME ARGS...: exits 2 and says why
    local name=$1; shift
    lupe synth "$@" >/dev/null 2>"$T/err"; local rc=$?
    expect_eq "$name exits 2" 2 "$rc"
}
usage "no --count" --out "$T/x"
usage "no --out" --count 3
usage "--count 0" --count 0 --out "$T/x"
usage "bad class" --count 3 --out "$T/x" --classes scratch,rust
expect_match "bad class is named" "rust" "$(cat "$T/err")"
usage "tiny size" --count 3 --out "$T/x" --size 10x10
usage "bad size" --count 3 --out "$T/x" --size 640
usage "other format" --count 3 --out "$T/x" --format coco
usage "min over max" --count 3 --out "$T/x" --min 4 --max 2
usage "empty over 1" --count 3 --out "$T/x" --empty 1.5
usage "montage extension" --count 3 --out "$T/x" --montage "$T/m.gif"
usage "--real without --montage" --count 3 --out "$T/x" --real "$IMAGES"
usage "stray argument" --count 3 --out "$T/x" extra
check "nothing written on usage errors" test ! -e "$T/x"

# A set with every class.
out=$(lupe synth --count 12 --out "$T/a" --seed 7 --classes scratch,dent,stain --max 4 --montage "$T/m.png"); rc=$?
expect_eq "synth exits 0" 0 "$rc"
expect_match "summary" \
    "^synth: 12 images in .*: [0-9]+ scratch, [0-9]+ dent, [0-9]+ stain boxes, [0-9]+ without defects -> " "$out"
expect_eq "12 images" 12 "$(ls "$T/a/images" | grep -c '^synth-7-0000[01][0-9]\.jpg$')"
expect_eq "12 label files" 12 "$(ls "$T/a/labels" | grep -c '\.txt$')"
expect_eq "classes.txt names the three classes in id order" "scratch dent stain" \
    "$(tr '\n' ' ' <"$T/a/classes.txt" | sed 's/ $//')"
expect_match "data.yaml" "nc: 3" "$(cat "$T/a/data.yaml")"
check "no staging folder left" test ! -e "$T/a.staging"
check "no partial folder left" test ! -e "$T/a.partial"
boxes=$(cat "$T/a/labels"/*.txt | wc -l)
summed=$(($(printf '%s\n' "$out" | sed -E 's/.*: ([0-9]+) scratch, ([0-9]+) dent, ([0-9]+) stain.*/\1+\2+\3/')))
expect_eq "label lines are the summary's boxes" "$summed" "$boxes"
check "some boxes" test "$boxes" -gt 5
bad=$(awk 'NF != 5 || $1 !~ /^[012]$/ || $2 <= 0 || $2 >= 1 || $3 <= 0 || $3 >= 1 ||
          $4 <= 0 || $4 > 1 || $5 <= 0 || $5 > 1' "$T/a/labels"/*.txt | wc -l)
expect_eq "every label line is class cx cy w h inside the image" 0 "$bad"
expect_eq "montage is a PNG" "89504e47" "$(head -c 4 "$T/m.png" | od -An -tx1 | tr -d ' \n')"
expect_eq "jpeg images" "ffd8ff" "$(head -c 3 "$T/a/images/synth-7-000000.jpg" | od -An -tx1 | tr -d ' \n')"

lupe synth --count 2 --out "$T/a" >/dev/null 2>"$T/err"; rc=$?
expect_eq "an existing folder is refused" 1 "$rc"
expect_match "and named" "already exists" "$(cat "$T/err")"

# Same seed, same bytes; a continued set matches the longer one.
lupe synth --count 12 --out "$T/b" --seed 7 --classes scratch,dent,stain --max 4 >/dev/null
check "same seed, same folder" diff -r "$T/a" "$T/b"
lupe synth --count 4 --first 8 --out "$T/c" --seed 7 --classes scratch,dent,stain --max 4 >/dev/null
check "--first 8 gives images 8..11" cmp "$T/a/images/synth-7-000010.jpg" "$T/c/images/synth-7-000010.jpg"
check "--first 8 gives labels 8..11" cmp "$T/a/labels/synth-7-000011.txt" "$T/c/labels/synth-7-000011.txt"
lupe synth --count 2 --out "$T/d" --seed 8 >/dev/null
check "another seed, other images" bash -c "! cmp -s '$T/a/images/synth-7-000000.jpg' '$T/d/images/synth-8-000000.jpg'"

# Empty images get an empty label file (a labeled negative).
lupe synth --count 3 --out "$T/e" --empty 1 --size 200x140 >/dev/null
expect_eq "no boxes with --empty 1" 0 "$(cat "$T/e/labels"/*.txt | wc -l)"
expect_eq "but a label file each" 3 "$(ls "$T/e/labels" | wc -l)"

# lupe import reads the folder back with every box.
ws="$T/ws"
lupe init "$ws" >/dev/null
out=$(cd "$ws" && lupe import --format yolo "$T/a"); rc=$?
expect_eq "import exits 0" 0 "$rc"
expect_match "import takes every image and box" "import: 12 items: 12 labeled \($boxes boxes\)" "$out"
expect_match "import stores the 12 images" "images: 12 stored" "$out"

# --ingest does the same in one go.
ws2="$T/ws2"
lupe init "$ws2" >/dev/null
out=$(cd "$ws2" && lupe synth --count 5 --out "$T/f" --seed 3 --min 2 --max 2 --empty 0 --ingest); rc=$?
expect_eq "--ingest exits 0" 0 "$rc"
expect_match "--ingest summary" "imported 5 images \(5 stored, 0 duplicate\), 5 labeled with 10 boxes" "$out"
expect_match "workspace holds them" '"images": 5' "$(lupe -w "$ws2" status --json)"
expect_match "with source synth" '"source": "synth"' "$(lupe -w "$ws2" images --json)"

(cd "$T" && "$LUPE_BIN" synth --count 2 --out "$T/nows" --ingest >/dev/null 2>"$T/err"); rc=$?
expect_eq "--ingest without a workspace fails" 1 "$rc"
expect_match "and says so" "no lupe workspace" "$(cat "$T/err")"
check "before making anything" test ! -e "$T/nows"

# The comparison montage with real photos.
lupe synth --count 8 --out "$T/g" --montage "$T/cmp.jpg" --real "$IMAGES" >/dev/null; rc=$?
expect_eq "comparison montage exits 0" 0 "$rc"
expect_eq "comparison montage is a JPEG" "ffd8ff" "$(head -c 3 "$T/cmp.jpg" | od -An -tx1 | tr -d ' \n')"
lupe synth --count 2 --out "$T/h" --montage "$T/cmp2.jpg" --real "$T/e/labels" >/dev/null 2>"$T/err"; rc=$?
expect_eq "a --real folder without images fails" 1 "$rc"
expect_match "and says so" "no .jpg, .jpeg or .png" "$(cat "$T/err")"
finish
