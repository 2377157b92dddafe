# The data plane end to end on metal-tags: ingest the .jpg photos, import
# the seed's Ground-Truth CSV, check the queue, freeze metal-tags@1 split by
# photo, export it in every format and import each export back, which must
# give the same boxes and splits. Also bad label files.
source "$(dirname "$0")/../lib/tap.sh"
lupe() { "$LUPE_BIN" "$@"; }
DS="$LUPE_SHARED/datasets/metal-tags"
GROUP='image-(.*)-cropped'

ws="$TAP_TMP/ws"
lupe -q init "$ws"
cd "$ws"
lupe -q ingest --include '*.jpg' --source metal-tags "$DS/images" >/dev/null
expect_match "ingest --include takes the 239 .jpg files" '"images": 239' "$(lupe status --json)"

out=$(lupe import --format gt-csv --images "$DS/images" --classes scratch "$DS/labels.csv" 2>"$TAP_TMP/err"); rc=$?
expect_eq "import exits 0" 0 "$rc"
expect_match "import: 235 labeled, 482 boxes" "235 items: 235 labeled \(482 boxes\), 0 unchanged, 0 skipped" "$out"
expect_match "import: images were already there" "0 stored, 235 duplicate" "$out"
expect_eq "import printed nothing on stderr" "" "$(cat "$TAP_TMP/err")"
out=$(lupe import --format gt-csv --images "$DS/images" --classes scratch "$DS/labels.csv" 2>&1)
expect_match "re-import changes nothing" "0 labeled \(0 boxes\), 235 unchanged" "$out"
q=$(lupe label queue 2>&1)
expect_match "queue: 4 images need work" "^4 images need work" "$(echo "$q" | tail -1)"
expect_eq "queue: all 4 unlabeled" 4 "$(echo "$q" | grep -c ' unlabeled ')"

out=$(lupe dataset create metal-tags --group-by "$GROUP" --seed 1); rc=$?
expect_eq "dataset create exits 0" 0 "$rc"
expect_match "metal-tags@1 holds 235 images and 482 boxes" "metal-tags@1 .* 235 images .* 482 boxes" "$out"
id1=$(echo "$out" | sed -n 's/^id //p')
st=$(lupe dataset stats metal-tags@1)
expect_match "no photo on two sides" "groups on more than one side: 0" "$st"
expect_match "60 photos" "^groups +[0-9]+ +[0-9]+ +[0-9]+ +60$" "$(echo "$st" | grep '^groups')"
expect_match "482 scratches" "^  scratch +[0-9]+ +[0-9]+ +[0-9]+ +482$" "$(echo "$st" | grep '^  scratch')"
out=$(lupe dataset create metal-tags --group-by "$GROUP" --seed 1)
expect_match "same labels, same version" "unchanged: metal-tags@1" "$out"

# A fresh workspace built the same way gives the same dataset id.
ws2="$TAP_TMP/ws2"
lupe -q init "$ws2"
lupe -q -w "$ws2" ingest --include '*.jpg' "$DS/images" >/dev/null
lupe -q -w "$ws2" import --format gt-csv --images "$DS/images" --classes scratch "$DS/labels.csv" >/dev/null
id2=$(lupe -w "$ws2" dataset create metal-tags --group-by "$GROUP" --seed 1 | sed -n 's/^id //p')
expect_eq "dataset id identical across runs" "$id1" "$id2"

# The reference split from the shared folder.
out=$(lupe dataset create ref --split-from "$DS/splits")
expect_match "reference split 163/36/36" "235 images \(163/36/36\)" "$out"

# Every export format, imported back into its own label set.
for f in yolo coco voc gt-manifest gt-csv; do
    lupe -q dataset export metal-tags@1 --format "$f" --out "$TAP_TMP/exp-$f"; rc=$?
    expect_eq "export $f exits 0" 0 "$rc"
    case $f in yolo|voc) src="$TAP_TMP/exp-$f" ;; coco) src=$(ls "$TAP_TMP/exp-$f"/annotations/*.json | head -1) ;;
                 gt-manifest) src=$(ls "$TAP_TMP/exp-$f"/*.jsonl "$TAP_TMP/exp-$f"/*.manifest 2>/dev/null | head -1) ;;
                 gt-csv) src=$(ls "$TAP_TMP/exp-$f"/*.csv | head -1) ;; esac
    extra=""
    [ "$f" = gt-csv ] && extra="--classes scratch"
    [ "$f" = coco ] && src_all=$(ls "$TAP_TMP/exp-$f"/annotations/*.json) || src_all=$src
    total=0
    for s in $src_all; do
        # shellcheck disable=SC2086
        out=$(lupe import --format "$f" --labelset "rt-$f" $extra "$s" 2>&1); rc=$?
        [ "$rc" -ne 0 ] && echo "# import $s: $out"
        n=$(echo "$out" | sed -n 's/.*labeled (\([0-9]*\) boxes).*/\1/p')
        total=$((total + ${n:-0}))
    done
    expect_eq "$f round trip: all 482 boxes come back" 482 "$total"
    lupe -q dataset create "rt-$f" --labelset "rt-$f" --group-by "$GROUP" --seed 1 >/dev/null
    d=$(lupe dataset diff metal-tags@1 "rt-$f@1" | tail -1)
    expect_eq "$f round trip: same images, splits and boxes" \
        "0 added, 0 removed, 0 moved between splits, 0 relabeled (0 boxes added, 0 removed, 0 changed)" \
        "$(echo "$d" | sed 's/, [0-9]* relabeled (/, 0 relabeled (/')"
    expect_match "$f round trip: no box differs" "\(0 boxes added, 0 removed, 0 changed\)" "$d"
done

# Bad label files: clear errors naming the place, and nothing half-done.
bad="$TAP_TMP/bad"; mkdir -p "$bad"
printf 'source_ref,image_width,image_height,image_depth,annotations,event_time,labeling_job,status\n"s3://b/x.jpg,450,300\n' >"$bad/quote.csv"
out=$(lupe import --format gt-csv "$bad/quote.csv" 2>&1); rc=$?
expect_eq "broken CSV quoting fails" 1 "$rc"
expect_match "broken CSV quoting names the line" "quote.csv: line 2" "$out"
printf '{"images": [}' >"$bad/broken.json"
out=$(lupe import --format coco "$bad/broken.json" 2>&1); rc=$?
expect_eq "malformed JSON fails" 1 "$rc"
expect_match "malformed JSON names the line" "broken.json.*line 1" "$out"
printf '<annotation><filename>x.jpg</filename><object>\n' >"$bad/a.xml"
out=$(lupe import --format voc "$bad/a.xml" 2>&1); rc=$?
expect_eq "malformed XML fails" 1 "$rc"
expect_match "malformed XML names the file" "a.xml" "$out"
row=$(head -2 "$DS/labels.csv" | tail -1 | sed "s/\"\\[.*\\]\"/\"[{'class_id': 0, 'top': 280, 'left': 440, 'height': 50, 'width': 50}, {'class_id': 1, 'top': 1, 'left': 1, 'height': 5, 'width': 5}]\"/")
{ head -1 "$DS/labels.csv"; echo "$row"; echo 's3://b/x/missing.jpg,450,300,3,"[]",1657199072.0,job,APPROVED'; } >"$bad/mixed.csv"
lupe -q labelset create bad scratch
out=$(lupe import --format gt-csv --labelset bad --classes scratch,dent --images "$DS/images" --strict "$bad/mixed.csv" 2>&1); rc=$?
expect_eq "--strict with problems fails" 1 "$rc"
expect_match "a missing image is named" "missing.jpg' not found" "$out"
expect_match "an unknown class is named" "class 'dent' is not in label set 'bad'" "$out"
nb=$(lupe dataset create bad --labelset bad 2>&1)
expect_match "--strict wrote no labels" "no approved labels" "$nb"
out=$(lupe import --format gt-csv --labelset bad --classes scratch,dent --images "$DS/images" "$bad/mixed.csv" 2>&1); rc=$?
expect_eq "without --strict the import is partial (exit 3)" 3 "$rc"
expect_match "without --strict: both problems listed, nothing labeled" "2 items: 0 labeled .* 2 skipped" "$out"
check "fsck is clean after all of it" lupe -q fsck
finish
