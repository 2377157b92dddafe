# lupe export onnx end to end: help and bad command lines; a tiny trained
# run exported from its folder and from a checkpoint at another size; the
# files summarised by --inspect and, where Debian's python3-onnx is
# installed, passed through onnx.checker with full shape inference, with
# Ultralytics' metadata; clear errors for a missing model, a file that is
# not a checkpoint and a file that is not ONNX.
source "$(dirname "$0")/../lib/tap.sh"
lupe() { "$LUPE_BIN" "$@"; }
T="$TAP_TMP"
cd "$T" || exit 1

expect_match "lupe --help lists export" "^  export " "$(lupe --help)"
h=$(lupe export --help); rc=$?
expect_eq "export --help exits 0" 0 "$rc"
for opt in --out --imgsz --inspect; do
    expect_match "export --help documents $opt" "^ +(-., )?$opt" "$h"
done
expect_match "export --help gives the layout" "output0" "$h"

usage() { # NAME ARGS...: exits 2
    local name=$1; shift
    lupe export "$@" >/dev/null 2>"$T/err"; local rc=$?
    expect_eq "$name exits 2" 2 "$rc"
}
usage "no format"
usage "an unknown format" tflite run
usage "no model" onnx
usage "two models" onnx a b
usage "imgsz not a multiple of 32" onnx run --imgsz 100
usage "--inspect with --out" onnx --inspect x.onnx --out y.onnx
expect_match "the unknown format is named" "tflite" "$(lupe export tflite run 2>&1)"

lupe export onnx nowhere.ckpt >/dev/null 2>"$T/err"; rc=$?
expect_eq "a missing model fails with 1" 1 "$rc"
expect_match "and names it" "nowhere.ckpt" "$(cat "$T/err")"

# A tiny trained run, as tests/cli/test_train.sh makes them.
lupe synth --count 8 --seed 3 --size 160x128 --min 1 --max 2 --empty 0 --out syn >/dev/null
lupe train syn --imgsz 64 --batch 4 --nbs 8 --epochs 1 --workers 1 --no-previews --out run >train.out 2>&1; rc=$?
expect_eq "a tiny run to export" 0 "$rc"

out=$(lupe export onnx run 2>&1); rc=$?
expect_eq "export of a run folder exits 0" 0 "$rc"
check "it writes weights/best.onnx beside best.ckpt" test -s run/weights/best.onnx
expect_match "and reports the layout" "YOLOv8n, 1 class, input images \[1, 3, 64, 64\], output0 \[1, 5, 84\]" "$out"

out=$(lupe export onnx run/weights/last.ckpt --out last96.onnx --imgsz 96 2>&1); rc=$?
expect_eq "export of a checkpoint at --imgsz 96 exits 0" 0 "$rc"
expect_match "it has 12x12 + 6x6 + 3x3 anchors" "output0 \[1, 5, 189\]" "$out"
check "to the --out file" test -s last96.onnx

out=$(lupe export onnx --inspect run/weights/best.onnx 2>&1); rc=$?
expect_eq "--inspect exits 0" 0 "$rc"
expect_match "--inspect: IR, opset, producer" "ONNX IR version 8, opset 17, producer lupe [0-9.]+" "$out"
expect_match "--inspect: one input and output" "[0-9]+ nodes, 1 input, 1 output, [0-9]+ initializers" "$out"

lupe export onnx --inspect syn/classes.txt >/dev/null 2>"$T/err"; rc=$?
expect_eq "--inspect of a non-ONNX file fails with 1" 1 "$rc"
expect_match "and says what it is not" "classes.txt: not an ONNX model" "$(cat "$T/err")"
lupe export onnx syn/classes.txt --out x.onnx >/dev/null 2>"$T/err"; rc=$?
expect_eq "a model that is not a checkpoint fails with 1" 1 "$rc"
expect_match "and names it" "classes.txt" "$(cat "$T/err")"
check "and writes nothing" test ! -e x.onnx

# An independent reader: the onnx package's checker with full shape
# inference, which must arrive at output0's declared shape.
py=/usr/bin/python3
if [ -x "$py" ] && "$py" -c 'import onnx' 2>/dev/null; then
    res=$(nice -n 19 "$py" - run/weights/best.onnx last96.onnx <<'EOF' 2>&1
import sys, onnx
for path in sys.argv[1:]:
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    g = onnx.shape_inference.infer_shapes(m, strict_mode=True).graph
    dims = [d.dim_value for d in g.output[0].type.tensor_type.shape.dim]
    meta = {p.key: p.value for p in m.metadata_props}
    print(path, "checked", g.input[0].name, g.output[0].name, dims, meta["names"], meta["imgsz"], meta["stride"],
          meta["task"])
EOF
    )
    expect_match "onnx.checker accepts the run's export" \
        "best.onnx checked images output0 \[1, 5, 84\] \{0: 'scratch'\} \[64, 64\] 32 detect" "$res"
    expect_match "and the one at 96" "last96.onnx checked images output0 \[1, 5, 189\] .* \[96, 96\]" "$res"
else
    n_tap=$((n_tap + 1)); echo "ok $n_tap # SKIP onnx.checker: Debian's python3-onnx is not installed"
fi
finish
