# lupe import onnx end to end: help, bad command lines, the committed
# YOLOv8-style export loaded and summarised (shapes, classes, operators,
# plan), the JSON form, --plan, --bench, --out, a model lupe refuses (and
# the node it names), a truncated file, and that label import still works
# as before beside the onnx form.
source "$(dirname "$0")/../lib/tap.sh"
lupe() { "$LUPE_BIN" "$@"; }
T="$TAP_TMP"
DATA="$(cd "$(dirname "$0")/../onnx/data" && pwd)"
M="$DATA/yolo_op12.onnx"

h=$(lupe import --help); rc=$?
expect_eq "import --help exits 0" 0 "$rc"
expect_match "help shows the onnx form" "lupe import onnx FILE" "$h"
for opt in --plan --json --threads --bench --out; do
    expect_match "help documents $opt" "^ +(-., )?$opt" "$h"
done
expect_eq "import onnx --help is the same help" "$h" "$(lupe import onnx --help)"

usage() { # NAME ARGS...: exits 2
    local name=$1; shift
    lupe import onnx "$@" >/dev/null 2>"$T/err"; local rc=$?
    expect_eq "$name exits 2" 2 "$rc"
}
usage "no file"
usage "two files" "$M" "$M"
usage "--threads 0" "$M" --threads 0
usage "--bench x" "$M" --bench x
usage "unknown option" "$M" --frobnicate

out=$(lupe import onnx "$M"); rc=$?
expect_eq "import onnx exits 0" 0 "$rc"
expect_match "names the producer and opset" "pytorch 1.13.0, IR 7, opset 12" "$out"
expect_match "input shape" "^input +images \[1, 3, 96, 96\] float32" "$out"
expect_match "output shape and layout" "^output +output0 \[1, 7, 189\] float32: YOLOv8 detection layout: 4 box rows \+ 3 class scores, 189 anchors" "$out"
expect_match "class names" "^classes +3: class0, class1, class2" "$out"
expect_match "operator counts" "^operators +276 nodes: Conv 60, Mul 56, Sigmoid 54" "$out"
expect_match "plan" "^plan +126 steps: 56 nodes folded at load; 60 convolutions on oneDNN with 0 batch norms and 53 activations fused; 4 layout changes" "$out"

j=$(lupe import onnx "$M" --json --threads 1); rc=$?
expect_eq "--json exits 0" 0 "$rc"
expect_eq "--json is JSON with the classes" '["class0","class1","class2"]' \
    "$(printf '%s' "$j" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["classes"], separators=(",", ":")))')"
expect_eq "--json output shape" "[1, 7, 189]" \
    "$(printf '%s' "$j" | python3 -c 'import json,sys; print(json.load(sys.stdin)["output"]["shape"])')"
expect_eq "--json counts Conv" "60" \
    "$(printf '%s' "$j" | python3 -c 'import json,sys; print(json.load(sys.stdin)["operators"]["Conv"])')"

p=$(lupe import onnx "$M" --plan); rc=$?
expect_eq "--plan exits 0" 0 "$rc"
expect_match "--plan lists a fused convolution" "conv silu +/b2/m.0/cv2/conv/Conv \(Conv\) -> \[1, 4, 24, 24\] nhwc" "$p"
expect_eq "--plan lists every step" 126 "$(printf '%s\n' "$p" | grep -cE '^ +[0-9]+  ')"

b=$(lupe import onnx "$M" --bench 3 --threads 1); rc=$?
expect_eq "--bench exits 0" 0 "$rc"
expect_match "--bench reports the median" "^speed +3 runs, 1 threads: median [0-9.]+ ms, best [0-9.]+ ms" "$b"

lupe import onnx "$M" --out "$T/copy.onnx" >/dev/null; rc=$?
expect_eq "--out exits 0" 0 "$rc"
check "--out copies the file" cmp -s "$M" "$T/copy.onnx"

# Refused: an operator lupe does not run. The zoo with one node's op_type
# renamed (same length, so the protobuf stays valid).
python3 - "$DATA/zoo_op17.onnx" "$T/bad.onnx" <<'EOF'
import sys
data = open(sys.argv[1], "rb").read()
assert data.count(b"\x22\x09LeakyRelu") == 1
open(sys.argv[2], "wb").write(data.replace(b"\x22\x09LeakyRelu", b"\x22\x09LeakyGelu", 1))
EOF
lupe import onnx "$T/bad.onnx" >/dev/null 2>"$T/err"; rc=$?
expect_eq "unsupported operator exits 1" 1 "$rc"
expect_match "names file, node and operator" "bad.onnx: node '/LeakyRelu' \(LeakyGelu\): operator LeakyGelu is not supported" "$(cat "$T/err")"

head -c 50000 "$M" >"$T/cut.onnx"
lupe import onnx "$T/cut.onnx" >/dev/null 2>"$T/err"; rc=$?
expect_eq "truncated file exits 1" 1 "$rc"
expect_match "truncated file is named" "cut.onnx: not an ONNX model" "$(cat "$T/err")"
lupe import onnx "$T/cut.onnx" --out "$T/none.onnx" >/dev/null 2>&1
check "--out writes nothing for a refused file" test ! -e "$T/none.onnx"

# Label import is unchanged: it still wants --format and a workspace.
lupe import "$T" >/dev/null 2>"$T/err"; rc=$?
expect_eq "label import without --format exits 2" 2 "$rc"
expect_match "label import usage" "usage: lupe import --format F PATH" "$(cat "$T/err")"
finish
