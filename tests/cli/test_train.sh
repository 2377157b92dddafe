# lupe train and lupe val end to end on tiny synthetic sets: help and bad
# command lines; a run folder with its files; --stop-after then --resume
# giving exactly the epochs of an uninterrupted run; ^C (SIGINT) stopping
# cleanly with a checkpoint to resume from; lupe val on a run and a
# checkpoint; a clear error for a missing dataset and a damaged checkpoint.
source "$(dirname "$0")/../lib/tap.sh"
lupe() { "$LUPE_BIN" "$@"; }
T="$TAP_TMP"
cd "$T" || exit 1

expect_match "lupe --help lists train" "^  train " "$(lupe --help)"
expect_match "lupe --help lists val" "^  val " "$(lupe --help)"
h=$(lupe train --help); rc=$?
expect_eq "train --help exits 0" 0 "$rc"
for opt in --scale --imgsz --batch --epochs --time-budget --out --seed --resume --init --optimizer --lr0 \
    --cos-lr --nbs --warmup-epochs --close-mosaic --mosaic --val-every --workers --threads --precision \
    --no-previews --no-augment --stop-after --pretrain; do
    expect_match "train --help documents $opt" "^ +(-., )?$opt" "$h"
done
expect_match "val --help documents --split" "^ +-s, --split" "$(lupe val --help)"

usage() { # NAME ARGS...: exits 2
    local name=$1; shift
    lupe train "$@" >/dev/null 2>"$T/err"; local rc=$?
    expect_eq "$name exits 2" 2 "$rc"
}
usage "no data" --epochs 1
usage "imgsz not a multiple of 32" syn --imgsz 100
usage "bad scale" syn --scale x
usage "bad budget" syn --time-budget 10q
usage "bad optimizer" syn --optimizer adam
usage "two data arguments" syn other
usage "an unknown pretraining source" syn --pretrain imagenet
usage "a pretraining budget that is not a time" syn --pretrain synth:100:soon
usage "--pretrain with --init" syn --pretrain synth:100 --init elsewhere
expect_match "the bad budget is quoted" "10q" "$(lupe train syn --time-budget 10q 2>&1)"

lupe synth --count 8 --seed 3 --size 160x128 --min 1 --max 2 --empty 0 --out syn >/dev/null
check "a synthetic set to train on" test -f syn/classes.txt

lupe train nowhere --epochs 1 >/dev/null 2>"$T/err"; rc=$?
expect_eq "a missing dataset fails with 1" 1 "$rc"
expect_match "and says which" "nowhere" "$(cat "$T/err")"

# The same tiny run twice: once straight, once stopped after 3 iterations
# and resumed. Epochs 3 at batch 4 over 8 images = 6 iterations.
tiny=(--imgsz 64 --batch 4 --nbs 8 --epochs 3 --close-mosaic 1 --workers 1 --seed 5 --no-previews)
out=$(lupe train syn "${tiny[@]}" --out a 2>&1); rc=$?
expect_eq "a straight run exits 0" 0 "$rc"
for f in config.json results.csv results_loss.png results_metrics.png weights/last.ckpt weights/best.ckpt \
    val/PR_curve.png val/confusion_matrix.png; do
    check "the run folder has $f" test -s "a/$f"
done
expect_eq "results.csv has a header and 3 epochs" 4 "$(wc -l <a/results.csv)"
expect_match "it reports val metrics" "^val: +P [0-9.]+ +R [0-9.]+ +mAP50 [0-9.]+ +mAP50-95 [0-9.]+" "$out"
expect_match "and the training speed" "training images/s" "$(echo "$out" | sed 's/[0-9.]* training/training/')"

out=$(lupe train syn "${tiny[@]}" --out b --stop-after 3 2>&1); rc=$?
expect_eq "--stop-after exits 0" 0 "$rc"
expect_match "and says how to continue" "lupe train --resume b" "$out"
check "a stopped run has last.ckpt" test -s b/weights/last.ckpt
out=$(lupe train --resume b 2>&1); rc=$?
expect_eq "--resume exits 0" 0 "$rc"
expect_match "it resumes mid-epoch" "resuming at epoch 2 batch 2" "$out"
# Losses, metrics and learning rates of every epoch: columns 1-14 (15-16 are times).
expect_eq "the resumed run's epochs equal the straight run's" "$(cut -d, -f1-14 a/results.csv)" \
    "$(cut -d, -f1-14 b/results.csv)"

# ^C: a real signal while training; the run stops cleanly and resumes.
# (the binary itself in the background: a shell function would get the signal)
"$LUPE_BIN" train syn --imgsz 64 --batch 4 --nbs 8 --epochs 200 --workers 1 --no-previews --val-every 50 --out c \
    >c.out 2>&1 &
pid=$!
for _ in $(seq 1 300); do [ -s c/weights/last.ckpt ] && break; sleep 0.1; done
kill -INT "$pid"
wait "$pid"; rc=$?
expect_eq "SIGINT: exits 0" 0 "$rc"
expect_match "SIGINT: says it stopped" "stopped after [0-9]+ epochs" "$(cat c.out)"
out=$(lupe train --resume c --stop-after 1 2>&1); rc=$?
expect_eq "and the run resumes" 0 "$rc"

# --pretrain synth:N:T makes N synthetic tags, pretrains on them once, and
# every run with the same settings starts from those weights.
pre=runs/pretrain-synth16-n-64-2s
out=$(lupe train syn --imgsz 64 --batch 4 --nbs 8 --epochs 1 --workers 1 --no-previews --pretrain synth:16:2s \
    --out p1 2>&1); rc=$?
expect_eq "--pretrain exits 0" 0 "$rc"
expect_eq "it made 16 synthetic tags" 16 "$(ls $pre/data/images 2>/dev/null | wc -l)"
check "and pretrained on them" test -s $pre/run/weights/best.ckpt
expect_match "the run starts from those weights" "\"init\": \"$pre/run/weights/best.ckpt\"" "$(cat p1/config.json)"
out=$(lupe train syn --imgsz 64 --batch 4 --nbs 8 --epochs 1 --workers 1 --no-previews --pretrain synth:16:2s \
    --out p2 2>&1); rc=$?
expect_eq "a second run with the same pretraining exits 0" 0 "$rc"
expect_match "and reuses it" "pretrain: reusing $pre/run" "$out"

# lupe val on the run folder (best.ckpt) and on a checkpoint, as JSON.
out=$(lupe val a syn --split train --plots vplots); rc=$?
expect_eq "val on a run exits 0" 0 "$rc"
expect_match "val prints the metrics" "^all +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+" "$out"
check "val wrote the PR curve" test -s vplots/PR_curve.png
check "val wrote a preview" test -s vplots/val_preview.jpg
j=$(lupe val a/weights/last.ckpt syn --split train --json); rc=$?
expect_eq "val --json exits 0" 0 "$rc"
expect_match "val --json has map50_95" '"map50_95": [0-9.]+' "$j"
head -c 2000 a/weights/best.ckpt >broken.ckpt
lupe val broken.ckpt syn --split train >/dev/null 2>"$T/err"; rc=$?
expect_eq "a truncated checkpoint fails with 1" 1 "$rc"
expect_match "and names the file" "broken.ckpt" "$(cat "$T/err")"
finish
