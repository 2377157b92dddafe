# lupe predict end to end on a tiny model trained here on synthetic tags:
# help and bad command lines; text and JSON output with boxes inside the
# original images; previews written; a corrupt JPEG and a text file named
# .jpg reported by name with exit 3 while the good images are still
# reported; folders; bf16; int8's calibration (missing, made with --calib,
# reused); lupe bench's help. The numbers themselves (inference against
# the training graph, bf16 and int8 against f32) are tests/infer/test_infer.c's.
source "$(dirname "$0")/../lib/tap.sh"
lupe() { "$LUPE_BIN" "$@"; }
T="$TAP_TMP"
cd "$T" || exit 1

expect_match "lupe --help lists predict" "^  predict " "$(lupe --help)"
expect_match "lupe --help lists bench" "^  bench " "$(lupe --help)"
h=$(lupe predict --help); rc=$?
expect_eq "predict --help exits 0" 0 "$rc"
for opt in --conf --iou --json --save-previews --precision --threads --calib --calib-images --max-det --imgsz --key --pubkey; do
    expect_match "predict --help documents $opt" "^ +(-., )?$opt" "$h"
done
expect_match "predict --help gives the exit statuses" "3 some images could not be read" "$h"
lupe bench --help >/dev/null; expect_eq "bench --help exits 0" 0 "$?"
lupe bench nothing >/dev/null 2>&1; expect_eq "an unknown benchmark exits 2" 2 "$?"

usage() { # NAME ARGS...: exits 2
    local name=$1; shift
    lupe predict "$@" >/dev/null 2>"$T/err"; local rc=$?
    expect_eq "$name exits 2" 2 "$rc"
}
usage "no arguments"
usage "a model and no image" run
usage "a bad precision" run a.jpg --precision f16
usage "a bad confidence" run a.jpg --conf 2
usage "--calib without int8" run a.jpg --calib syn

lupe synth --count 8 --seed 3 --size 160x128 --min 1 --max 2 --empty 0 --out syn >/dev/null
check "a synthetic set" test -f syn/classes.txt
lupe train syn --imgsz 64 --batch 4 --nbs 8 --epochs 2 --close-mosaic 1 --workers 1 --seed 5 --no-previews \
    --out run >/dev/null 2>&1
check "a tiny trained run" test -s run/weights/best.ckpt

lupe predict nowhere syn/images/synth-3-000000.jpg >/dev/null 2>"$T/err"; rc=$?
expect_eq "a missing model exits 1" 1 "$rc"
expect_match "and names it" "nowhere" "$(cat "$T/err")"

imgs=(syn/images/synth-3-000000.jpg syn/images/synth-3-000001.jpg)
lo=(--conf 0.0001 --max-det 5)
out=$(lupe predict run "${imgs[@]}" "${lo[@]}"); rc=$?
expect_eq "predict exits 0" 0 "$rc"
expect_match "a line per image with its size" "^syn/images/synth-3-000001.jpg: 160x128, 5 detections, [0-9.]+ ms$" "$out"
expect_match "a line per detection" "^  [a-z]+ +0\.[0-9]{3} +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+$" "$out"

j=$(lupe predict run "${imgs[@]}" "${lo[@]}" --json); rc=$?
expect_eq "--json exits 0" 0 "$rc"
expect_eq "--json: one object per image" 2 "$(echo "$j" | grep -c '^{.*}$')"
for key in '"file":"syn/images/synth-3-000000.jpg"' '"width":160' '"height":128' '"detections":\[\{' '"latency_ms":[0-9.]+' \
    '"class":0' '"name":"scratch"' '"score":0\.[0-9]+' '"box":\[[-0-9.e]+,[-0-9.e]+,[-0-9.e]+,[-0-9.e]+\]'; do
    expect_match "--json has $key" "$key" "$j"
done
# Every box lies inside its 160x128 image, corners ordered.
bad=$(echo "$j" | grep -oE '"box":\[[^]]*\]' | sed 's/"box":\[//; s/\]//' |
    awk -F, '{ if ($1 < 0 || $2 < 0 || $3 > 160 || $4 > 128 || $1 > $3 || $2 > $4) print }')
expect_eq "boxes are mapped back inside the original image" "" "$bad"
expect_eq "each image has its 5 detections" 10 "$(echo "$j" | grep -oE '"box"' | wc -l | tr -d ' ')"

out=$(lupe predict run "${imgs[@]}" "${lo[@]}" --save-previews prev); rc=$?
expect_eq "--save-previews exits 0" 0 "$rc"
for f in prev/synth-3-000000.jpg prev/synth-3-000001.jpg; do
    check "the preview $f is written" test -s "$f"
    expect_eq "and is a JPEG" "ffd8" "$(head -c 2 "$f" | od -An -tx1 | tr -d ' \n')"
done

head -c 300 syn/images/synth-3-000002.jpg >broken.jpg
echo "not an image" >text.jpg
out=$(lupe predict run syn/images/synth-3-000000.jpg broken.jpg text.jpg syn/images/synth-3-000001.jpg "${lo[@]}" 2>"$T/err"); rc=$?
expect_eq "a corrupt image exits 3" 3 "$rc"
expect_match "the truncated JPEG is named" "broken.jpg" "$(cat "$T/err")"
expect_match "the text file is named" "text.jpg" "$(cat "$T/err")"
expect_match "the image before it is reported" "^syn/images/synth-3-000000.jpg: " "$out"
expect_match "the image after it is reported" "^syn/images/synth-3-000001.jpg: " "$out"

mkdir -p folder && cp syn/images/synth-3-00000[0-3].jpg folder/ && echo x >folder/notes.txt
out=$(lupe predict run folder "${lo[@]}"); rc=$?
expect_eq "a folder exits 0" 0 "$rc"
expect_eq "a folder stands for its 4 images" 4 "$(echo "$out" | grep -c '^folder/')"

out=$(lupe predict run "${imgs[@]}" "${lo[@]}" --threads 1); rc=$?
expect_eq "--threads 1 exits 0" 0 "$rc"
if grep -qE 'avx512_bf16|amx_bf16' /proc/cpuinfo; then
    out=$(lupe predict run "${imgs[@]}" "${lo[@]}" --precision bf16); rc=$?
    expect_eq "bf16 exits 0" 0 "$rc"
    expect_eq "bf16 reports 5 detections per image" 2 "$(echo "$out" | grep -c ', 5 detections')"
else
    tap_ok "# SKIP bf16: this CPU has no bf16 instructions"
    tap_ok "# SKIP bf16: this CPU has no bf16 instructions"
fi

lupe predict run "${imgs[@]}" --precision int8 >/dev/null 2>"$T/err"; rc=$?
expect_eq "int8 without a calibration exits 1" 1 "$rc"
expect_match "and names the missing file and --calib" "run/weights/best.calib.*--calib" "$(cat "$T/err")"
out=$(lupe predict run "${imgs[@]}" "${lo[@]}" --precision int8 --calib syn --calib-images 4 2>"$T/err"); rc=$?
expect_eq "int8 with --calib exits 0" 0 "$rc"
check "the calibration is kept next to the model" test -s run/weights/best.calib
expect_match "and says what it was made from" "syn train split, 4 of 8 images" "$(cat "$T/err")"
out=$(lupe predict run "${imgs[@]}" "${lo[@]}" --precision int8); rc=$?
expect_eq "a later int8 run reuses it" 0 "$rc"
expect_eq "int8 reports 5 detections per image" 2 "$(echo "$out" | grep -c ', 5 detections')"
finish
