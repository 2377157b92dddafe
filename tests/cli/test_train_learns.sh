# A tiny detector learns: YOLOv8n at 128x128 trained from scratch on 8
# synthetic tags (planted scratches, exact boxes) for 240 iterations of 4.
# The training loss must fall at least 3x, and the trained model, evaluated
# in inference mode (running statistics, NMS), must find the planted
# scratches: precision, recall at the max-F1 confidence and mAP50.
# Why 240: batch-norm running variances start at 1 and keep 0.97^n of it
# (momentum 0.03), which after 100 iterations still swamps the small
# variances of a tiny set; after 240 it is below 1e-3. SGD with a cosine
# decay lets the statistics catch up with the weights at the end.
source "$(dirname "$0")/../lib/tap.sh"
lupe() { "$LUPE_BIN" "$@"; }
T="$TAP_TMP"
cd "$T" || exit 1

lupe synth --count 8 --seed 7 --min 1 --max 2 --empty 0 --out syn >/dev/null
check "8 synthetic tags" test -f syn/classes.txt
out=$(lupe train syn --imgsz 128 --batch 4 --nbs 4 --epochs 120 --warmup-epochs 0 --no-augment --close-mosaic 0 \
    --optimizer sgd --lr0 0.02 --cos-lr --val-every 40 --workers 1 --no-previews --out run 2>&1); rc=$?
expect_eq "training exits 0" 0 "$rc"
loss() { awk -F, -v e="$1" 'NR == e + 1 { printf "%.4f", $2 + $3 + $4 }' run/results.csv; }
first=$(loss 1) last=$(loss 120)
echo "# training loss (box+cls+dfl): epoch 1 $first, epoch 120 $last"
check "the training loss falls at least 3x ($first -> $last)" awk -v a="$first" -v b="$last" 'BEGIN { exit !(b * 3 < a) }'
j=$(lupe val run syn --split train --json); rc=$?
expect_eq "val exits 0" 0 "$rc"
get() { echo "$j" | sed -n "s/^ *\"$1\": \([0-9.]*\),*$/\1/p" | head -1; }
p=$(get precision) r=$(get recall) m=$(get map50)
echo "# planted scratches: P $p R $r mAP50 $m"
check "precision at max F1 >= 0.5 ($p)" awk -v x="$p" 'BEGIN { exit !(x >= 0.5) }'
check "recall at max F1 >= 0.4 ($r)" awk -v x="$r" 'BEGIN { exit !(x >= 0.4) }'
check "mAP50 >= 0.4 ($m)" awk -v x="$m" 'BEGIN { exit !(x >= 0.4) }'
finish
