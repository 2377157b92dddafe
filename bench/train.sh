#!/usr/bin/env bash
# Detector benchmarks on the metal-tag photos (issue figures, docs/training.md):
#
#   bench/train.sh speed                 images/s of the whole `lupe train` loop at 480,
#                                        batch 16, next to the PyTorch oracle's step
#                                        (bench/torch_step.py, same network, threads, batch),
#                                        measured in the same run
#   bench/train.sh pretrain [N] [BUDGET] make N synthetic tags (default 3000) and train on
#                                        them for BUDGET (default 20m) into runs/pretrain-synth;
#                                        then EXTRA="--init runs/pretrain-synth" for accuracy
#   bench/train.sh accuracy [BUDGET...]  train on the reference split (163/36/36 by photo)
#                                        for each budget (default 10m 20m) and seed
#                                        (SEEDS, default "0 1 2"); prints val and test
#                                        P, R, mAP50, mAP50-95 per run, then mean and spread
#
# Environment: LUPE (binary, default build/release/bin/lupe), SEEDS, NBS (nominal
# batch of the accuracy runs, default 16: see docs/training.md), EXTRA (more
# `lupe train` options, e.g. "--pretrain synth:3000:15m"), TAG (run folders are
# runs/acc[-TAG]-BUDGET-sSEED), BENCH_WS (workspace).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
lupe=$(realpath "${LUPE:-$top/build/release/bin/lupe}")
shared=${LUPE_SHARED:-$(cd "$top/.." && pwd)/shared}
ws=${BENCH_WS:-$top/build/bench-ws}
mode=${1:-speed}
shift || true

# A workspace with metal-tags@1 (lupe's own seeded split) and metal-tags-ref@1
# (the reference split of ../shared), made once.
if [ ! -d "$ws/.lupe" ]; then
    LUPE_DEMO_WS="$ws" LUPE_DEMO_TRAIN=0 "$top/scripts/demo" "$lupe" >/dev/null
    (cd "$ws" && "$lupe" dataset create metal-tags-ref --split-from "$shared/datasets/metal-tags/splits" >/dev/null)
fi
cd "$ws"

case "$mode" in
speed)
    threads=$(nproc)
    echo "PyTorch oracle (YOLOv8n step: forward, backward, SGD; 480, batch 16, $threads threads):"
    torch=$(/usr/bin/python3 "$top/bench/torch_step.py" n 480 16 "$threads" 3 2>&1 | grep step_ms || true)
    echo "  $torch"
    echo "lupe train (whole loop: loading, augmentation, forward, loss, backward, optimizer, EMA), 3 epochs:"
    # progress to stderr through the inherited descriptor: `tee /dev/stderr` would
    # reopen a log file at offset 0 and overwrite the lines printed before it
    out=$("$lupe" train metal-tags@1 --epochs 3 --out "$ws/runs/speed" --no-previews 2>&1 | tee >(cat >&2))
    ips=$(echo "$out" | sed -n 's/.*training \([0-9.]*\) images\/s.*/\1/p' | tail -1)
    tms=$(echo "$torch" | sed -n 's/.*step_ms=\([0-9.]*\).*/\1/p')
    rm -rf "$ws/runs/speed"
    if [ -n "$tms" ]; then
        tips=$(awk -v t="$tms" 'BEGIN { printf "%.1f", 16000 / t }')
        echo "result: lupe train $ips images/s; PyTorch step alone $tips images/s;" \
            "ratio $(awk -v a="$ips" -v b="$tips" 'BEGIN { printf "%.2f", a / b }')x" \
            "(Ultralytics' whole loop measured at about 9 images/s on this machine)"
    else
        echo "result: lupe train $ips images/s (PyTorch not measured: install python3-torch)"
    fi
    ;;
pretrain)
    n=${1:-3000} budget=${2:-20m}
    rm -rf "$ws/synth-$n" "$ws/runs/pretrain-synth"
    "$lupe" synth --count "$n" --seed 1 --out "$ws/synth-$n"
    "$lupe" train "$ws/synth-$n" --time-budget "$budget" --seed 0 --val-every 1000 --out "$ws/runs/pretrain-synth" 2>&1 | grep -v '^epoch'
    echo "pretrained weights: $ws/runs/pretrain-synth/weights/best.ckpt"
    ;;
accuracy)
    budgets=("$@")
    [ ${#budgets[@]} -gt 0 ] || budgets=(10m 20m)
    for b in "${budgets[@]}"; do
        rows=()
        for s in ${SEEDS:-0 1 2}; do
            run="$ws/runs/acc${TAG:+-$TAG}-$b-s$s"
            rm -rf "$run"
            t0=$(date +%s)
            out=$("$lupe" train metal-tags-ref@1 --time-budget "$b" --seed "$s" --nbs "${NBS:-16}" --out "$run" ${EXTRA:-} 2>&1)
            t=$(($(date +%s) - t0))
            val=$(echo "$out" | sed -n 's/^val: *P \([0-9.]*\) *R \([0-9.]*\) *mAP50 \([0-9.]*\) *mAP50-95 \([0-9.]*\)/\1 \2 \3 \4/p')
            tst=$(echo "$out" | sed -n 's/^test: *P \([0-9.]*\) *R \([0-9.]*\) *mAP50 \([0-9.]*\) *mAP50-95 \([0-9.]*\)/\1 \2 \3 \4/p')
            ep=$(echo "$out" | sed -n 's/^run: .*(\([0-9]*\) epochs.*/\1/p')
            secs=$(echo "$out" | sed -n 's/^run: .*epochs, \([0-9]*\) s.*/\1/p')
            # t counts a --pretrain's first making of its weights too; secs is the run alone
            [ -n "$secs" ] && [ $((t - secs)) -gt 30 ] && t="$secs (with pretraining $t)"
            printf 'budget %s seed %s: %s epochs, %ss; val P R mAP50 mAP50-95 = %s; test = %s\n' "$b" "$s" "$ep" "$t" "$val" "$tst"
            rows+=("$val $tst")
        done
        printf '%s\n' "${rows[@]}" | awk -v b="$b" '
            { for (i = 1; i <= 8; i++) { s[i] += $i; q[i] += $i * $i } n++ }
            END {
                split("val-P val-R val-mAP50 val-mAP50-95 test-P test-R test-mAP50 test-mAP50-95", h, " ")
                printf "budget %s, %d seeds, mean +- sd:", b, n
                for (i = 1; i <= 8; i++) { m = s[i] / n; v = q[i] / n - m * m; if (v < 0) v = 0
                    printf " %s %.3f+-%.3f", h[i], m, sqrt(v) }
                printf "\n"
            }'
    done
    ;;
*)
    echo "usage: bench/train.sh speed | pretrain [N] [BUDGET] | accuracy [BUDGET...]" >&2
    exit 2
    ;;
esac
