# lupe models and lupe keys end to end on two tiny trained models: help
# and bad command lines; lupe train --register with a gate; registration
# from a run folder; list, show (--json), approve, reject, archive and
# aliases with their history; the gate failing and the champion evaluated
# again on another dataset's test split; compare; keys; signed packages
# that verify, and each tampering refused by its own check; a version that
# outlives its run folder; lupe predict on versions, aliases, packages
# and their ONNX exports, and refused on tampered ones; fsck afterwards.
source "$(dirname "$0")/../lib/tap.sh"
lupe() { "$LUPE_BIN" "$@"; }
T="$TAP_TMP"
cd "$T" || exit 1
export LUPE_USER=tester

expect_match "lupe --help lists models" "^  models " "$(lupe --help)"
expect_match "lupe --help lists keys" "^  keys " "$(lupe --help)"
h=$(lupe models --help); rc=$?
expect_eq "models --help exits 0" 0 "$rc"
for opt in --group --gate --no-gate --by --note --why --json --data --split --conf --top --key --out --pubkey; do
    expect_match "models --help documents $opt" "^ +(-., )?$opt" "$h"
done
expect_match "train --help documents --register" "^ +--register G" "$(lupe train --help)"
expect_match "keys --help explains the files" "NAME.key" "$(lupe keys --help)"

lupe init ws >/dev/null
cd ws || exit 1
usage() { # NAME ARGS...: exits 2
    local name=$1; shift
    lupe "$@" >/dev/null 2>"$T/err"; local rc=$?
    expect_eq "$name exits 2" 2 "$rc"
}
usage "register without --group" models register somewhere
usage "a bad gate rule" models register somewhere --group g --gate 'mAP>=0.4'
usage "approve without --why" models approve g:1
usage "verify without a key" models verify somewhere
usage "alias with a bad version" models alias g production one
usage "train --gate without --register" train x --gate 'map50>=0'
expect_match "the bad rule is named" "unknown metric 'mAP'" "$(lupe models register x --group g --gate 'mAP>=0.4' 2>&1)"
lupe models list >/dev/null 2>"$T/err"; rc=$?
expect_eq "an empty registry lists fine" 0 "$rc"
lupe models show g:1 >/dev/null 2>"$T/err"; rc=$?
expect_eq "showing a missing version exits 1" 1 "$rc"
expect_match "and names the group" "no model group 'g'" "$(cat "$T/err")"

# Data: 12 synthetic tags in the workspace, a dataset version with a test
# split, and the same version exported as a YOLO folder (another dataset
# as far as the registry knows).
lupe synth --count 12 --seed 4 --size 160x128 --min 1 --max 2 --empty 0 --out syn --ingest >/dev/null 2>&1
lupe dataset create tags --split 50/25/25 >/dev/null
lupe dataset export tags@1 --format yolo --out exp >/dev/null
tags_id=$(lupe dataset show tags@1 | sed -n 's/^id *//p')
check "a dataset version to train on" test -n "$tags_id"
tiny=(--imgsz 64 --batch 2 --nbs 4 --epochs 2 --close-mosaic 1 --workers 1 --no-previews)

# Model A: trained, registered and gated in one command.
out=$(lupe train tags@1 "${tiny[@]}" --seed 5 --out ra --register tag --gate 'map50_95>=0' 2>&1); rc=$?
expect_eq "train --register exits 0 when the gate passes" 0 "$rc"
expect_match "it registers version 1" "registered tag:1 \(pending\)" "$out"
expect_match "and the gate approves it" "^tag:1: approved" "$out"
check "the run folder has metrics.json" test -s ra/metrics.json
expect_match "metrics.json has test metrics" '"map50_95": [0-9.]+' "$(sed -n '/"test"/,$p' ra/metrics.json)"
# (the commit's form only: an incremental build may bake different commits
# into different objects)
expect_match "metrics.json names the lupe commit" '"lupe_commit": "([0-9a-f]{12}(-dirty)?|unknown)"' \
    "$(cat ra/metrics.json)"

# Model B: trained on the exported folder, registered without the gate.
lupe train exp "${tiny[@]}" --seed 6 --out rb >/dev/null 2>&1
out=$(lupe models register rb --group tag --no-gate --by ann --note "folder run"); rc=$?
expect_eq "register --no-gate exits 0" 0 "$rc"
expect_match "version 2 is pending" "registered tag:2 \(pending\)" "$out"
lupe models register rb --group tag >/dev/null 2>"$T/err"; rc=$?
expect_eq "the same run twice is refused" 1 "$rc"
expect_match "naming the version it is" "already tag:2" "$(cat "$T/err")"

out=$(lupe models list)
expect_match "list shows tag:1 approved" "^tag:1 +approved" "$out"
expect_match "list shows tag:2 pending by ann" "^tag:2 +pending +- +[0-9TZ:-]+ +ann" "$out"
j=$(lupe models show tag:1 --json); rc=$?
expect_eq "show --json exits 0" 0 "$rc"
expect_match "show --json: the dataset id" "\"dataset_id\": \"$tags_id\"" "$j"
expect_match "show --json: the source commit" '"source_commit": "([0-9a-f]{12}|unknown)' "$j"
expect_match "show --json: hyperparameters" '"imgsz": 64' "$j"
expect_match "show --json: the stored gate" '"reason": "passed: test.map50_95' "$j"
expect_match "show --json: the status log" '"who": "gate"' "$j"
expect_match "show: the folder run's data is its absolute path" "^data +$T/ws/exp" "$(lupe models show tag:2)"

# Aliases and status changes.
out=$(lupe models alias tag production 1 --why "first release"); rc=$?
expect_eq "alias production -> 1" 0 "$rc"
lupe models alias tag production 2 >/dev/null 2>"$T/err"; rc=$?
expect_eq "production cannot point at a pending version" 1 "$rc"
expect_match "and says so" "only at an approved version" "$(cat "$T/err")"

# The gate on B: production (trained on tags@1) is evaluated again on the
# folder's test split; an impossible rule keeps B pending (exit 3).
out=$(lupe models gate tag:2 --gate 'map50_95>=2' 2>&1); rc=$?
expect_eq "a failing gate exits 3" 3 "$rc"
expect_match "the champion was evaluated again" "champion v1 \(production\) was evaluated again" "$out"
expect_match "the reason names the rule" "test.map50_95 [0-9.]+ is not >= 2" "$out"
expect_match "tag:2 stays pending" "^tag:2: stays pending" "$out"
j=$(lupe models show tag:2 --json)
expect_match "the stored comparison says re-evaluated" '"reevaluated": true' "$j"
expect_match "on the folder" "\"dataset\": \"$T/ws/exp\"" "$j"

out=$(lupe models approve tag:2 --why "checked by hand" --by bob); rc=$?
expect_eq "approve exits 0" 0 "$rc"
lupe models reject tag:2 --why "changed my mind" >/dev/null 2>"$T/err"; rc=$?
expect_eq "approved -> rejected is refused" 1 "$rc"
expect_match "naming both states" "from approved to rejected" "$(cat "$T/err")"
out=$(lupe models alias tag production 2 --why better)
expect_match "the alias moves 1 -> 2" "tag@production: version 1 -> 2" "$out"
out=$(lupe models aliases tag)
expect_match "aliases lists production" "^tag@production -> tag:2" "$out"
expect_match "and its history" "tag@production +1 -> 2 +by tester: better" "$out"
expect_match "history has the first move" "tag@production +\(new\) -> 1 +by tester: first release" "$out"
out=$(lupe models show tag:2)
expect_match "show: bob's approval is in the history" "pending +-> approved +by bob: checked by hand" "$out"

# compare: side by side, then the test images where they disagree most.
out=$(lupe models compare tag:1 tag:2 --conf 0.01 2>&1); rc=$?
expect_eq "compare exits 0" 0 "$rc"
expect_match "compare prints test mAP50-95 of both" "^test mAP50-95 +[0-9.]+ +[0-9.]+" "$out"
expect_match "and ranks the test images" "^1 +[0-9a-f]{64} +[0-9]+ +[0-9]+" "$out"
expect_eq "three test images ranked" 3 "$(echo "$out" | grep -cE '^[0-9] +[0-9a-f]{64} ')"
out=$(lupe models compare tag:1 tag:1 --conf 0.01 2>&1)
expect_eq "a model agrees with itself everywhere" 3 "$(echo "$out" | grep -cE '^[0-9] +[0-9a-f]{64} .* 0\.000$')"

# Keys.
out=$(lupe keys create release); rc=$?
expect_eq "keys create exits 0" 0 "$rc"
expect_eq "the secret key is mode 600" 600 "$(stat -c %a .lupe/keys/release.key)"
pub=$(lupe keys export release)
expect_match "export prints 64 hex digits" "^[0-9a-f]{64}$" "$pub"
expect_match "list shows it" "^release +id [0-9a-f]{16} +$pub" "$(lupe keys list)"
lupe keys create release >/dev/null 2>&1; rc=$?
expect_eq "a key is not overwritten" 1 "$rc"
lupe keys create other >/dev/null

# Packages.
out=$(lupe models package tag@production --key release --out pkg); rc=$?
expect_eq "package exits 0" 0 "$rc"
for f in weights.ckpt results.csv model.onnx manifest.json manifest.sig; do check "the package has $f" test -s "pkg/$f"; done
expect_eq "the signature is 64 bytes" 64 "$(stat -c %s pkg/manifest.sig)"
expect_match "the manifest records the version" '"version": 2' "$(cat pkg/manifest.json)"
out=$(lupe models verify pkg --key release); rc=$?
expect_eq "verify --key exits 0" 0 "$rc"
expect_match "and says what it checked" "verified .*3 files" "$out"
out=$(cd "$T" && lupe models verify ws/pkg --pubkey "$pub"); rc=$?
expect_eq "verify --pubkey works outside a workspace" 0 "$rc"

refused() { # NAME CHECK-MESSAGE DIR [KEY]
    local out rc
    out=$(lupe models verify "$3" --key "${4:-release}" 2>&1); rc=$?
    expect_eq "$1: refused (exit 1)" 1 "$rc"
    expect_match "$1: $2" "$2" "$out"
}
cp -r pkg p1 && printf '\x01' | dd of=p1/weights.ckpt bs=1 seek=5000 conv=notrunc 2>/dev/null
refused "a flipped bit in the weights" "file hash check failed: weights.ckpt" p1
cp -r pkg p2 && sed -i 's/"group": "tag"/"group": "tah"/' p2/manifest.json
refused "a changed manifest" "signature check failed" p2
cp -r pkg p3
refused "the wrong key" "signer check failed: the package is signed by key" p3 other
cp -r pkg p4 && rm p4/results.csv
refused "a missing file" "file presence check failed: results.csv is missing" p4
cp -r pkg p5 && truncate -s 40 p5/manifest.sig
refused "a truncated signature" "signature size check failed: manifest.sig is 40 bytes" p5
cp -r pkg p7 && printf '\x01' | dd of=p7/model.onnx bs=1 seek=3000 conv=notrunc 2>/dev/null
refused "a flipped bit in the ONNX export" "file hash check failed: model.onnx" p7
cp -r pkg p6 && echo x >p6/extra.so
refused "an unlisted file" "unlisted files check failed: extra.so" p6
out=$(lupe models package tag:2 --key release --out deep/er/pkg); rc=$?
expect_eq "package makes the parent folders it needs" 0 "$rc"
check "and the package is there" test -s deep/er/pkg/manifest.sig
lupe models package tag:2 --key release --out pkg >/dev/null 2>"$T/err"; rc=$?
expect_eq "an existing package folder is not overwritten" 1 "$rc"

# lupe predict on what the registry holds: the run's checkpoint, the
# version, the alias, the package (verified first) and the package's ONNX
# export find the same boxes (ONNX within 0.01 px and 1e-4 in score).
img=$(ls syn/images/*.jpg | head -1)
dets() { # MODEL ARGS...: "class score x1 y1 x2 y2" per detection
    lupe predict "$@" "$img" --conf 0.001 --max-det 8 --json 2>"$T/err" |
        grep -oE '"box":\[[^]]*\],"class":[0-9]+,"name":"[^"]*","score":[-0-9.e]+' |
        sed -E 's/"box":\[([^]]*)\],"class":([0-9]+),"name":"[^"]*","score":([-0-9.e]+)/\2 \3 \1/; s/,/ /g'
}
same() { # A B TOL: every detection of A has one in B of its class within TOL
    awk -v tol="$3" 'NR == FNR { b[++nb] = $0; next }
        { na++; for (i = 1; i <= nb; i++) { split(b[i], q, " "); ok = q[1] == $1 && (q[2] - $2) ^ 2 < 1e-8
              for (k = 3; k <= 6; k++) ok = ok && ($k - q[k]) ^ 2 <= tol ^ 2
              if (ok) { hit++; break } } }
        END { print (na == nb && hit == na) ? "same" : "differ (" na " against " nb ", " hit+0 " matched)" }' <(echo "$2") <(echo "$1")
}
ckpt_dets=$(dets rb)
check "the run's checkpoint finds boxes" test "$(echo "$ckpt_dets" | grep -c .)" -ge 1
expect_eq "tag:2 finds the same boxes" "same" "$(same "$ckpt_dets" "$(dets tag:2)" 0)"
expect_match "and says which version it ran" "tag:2 is tag:2 \(approved" "$(lupe predict tag:2 "$img" 2>&1 >/dev/null)"
expect_eq "tag@production finds the same boxes" "same" "$(same "$ckpt_dets" "$(dets tag@production)" 0)"
expect_eq "the package finds the same boxes" "same" "$(same "$ckpt_dets" "$(dets pkg)" 0)"
expect_match "after verifying it with the workspace's key" "pkg: verified \(key [0-9a-f]{16}; signature, manifest and 3 files\)" \
    "$(lupe predict pkg "$img" 2>&1 >/dev/null)"
expect_eq "its ONNX export finds the same boxes" "same" "$(same "$ckpt_dets" "$(dets pkg/model.onnx)" 0.01)"
out=$(cd "$T" && lupe predict ws/pkg "ws/$img" --pubkey "$pub"); rc=$?
expect_eq "a package runs outside a workspace with --pubkey" 0 "$rc"
out=$(cd "$T" && lupe predict ws/pkg "ws/$img" 2>&1); rc=$?
expect_eq "and is refused without a key" 1 "$rc"
expect_match "saying how to give one" "verified before it runs: give --pubkey" "$out"
out=$(lupe predict p1 "$img" 2>&1); rc=$?
expect_eq "a package with a flipped bit does not run" 1 "$rc"
expect_match "naming the failed check" "file hash check failed: weights.ckpt" "$out"
out=$(lupe predict pkg "$img" --key other 2>&1); rc=$?
expect_eq "a package checked with the wrong key does not run" 1 "$rc"
expect_match "naming the signer check" "signer check failed" "$out"
lupe predict pkg/model.onnx "$img" --precision bf16 >/dev/null 2>&1; rc=$?
expect_eq "an ONNX file with --precision exits 2" 2 "$rc"
lupe predict tag:9 "$img" >/dev/null 2>"$T/err"; rc=$?
expect_eq "a missing version exits 1" 1 "$rc"
expect_match "naming it" "tag:9" "$(cat "$T/err")"
out=$(lupe predict pkg "$img" --precision int8 --calib tags@1 --calib-images 3 2>&1); rc=$?
expect_eq "int8 calibrates for a package" 0 "$rc"
check "keeping the ranges in a hidden file of the package" test -s pkg/.weights.calib
out=$(lupe models verify pkg --key release); rc=$?
expect_eq "which still verifies" 0 "$rc"
out=$(lupe predict tag:2 "$img" --precision int8 --calib tags@1 --calib-images 3 2>&1); rc=$?
expect_eq "int8 calibrates for a registry version" 0 "$rc"
weights=$(lupe models show tag:2 --json | grep -oE '"weights": *"[0-9a-f]{64}"' | grep -oE '[0-9a-f]{64}')
check "keeping the ranges in the workspace" test -s ".lupe/calib/$weights.calib"

# A version outlives its run folder; archiving; fsck.
rm -rf ra
out=$(lupe models package tag:1 --key release --out pkg1 && lupe models verify pkg1 --key release); rc=$?
expect_eq "tag:1 still packages and verifies without its run folder" 0 "$rc"
lupe models archive tag:2 --why old >/dev/null 2>"$T/err"; rc=$?
expect_eq "production's version cannot be archived" 1 "$rc"
expect_match "and says why" "alias 'production' points at it" "$(cat "$T/err")"
out=$(lupe models archive tag:1 --why superseded); rc=$?
expect_eq "tag:1 archives" 0 "$rc"
expect_match "list shows it archived" "^tag:1 +archived" "$(lupe models list tag)"
lupe fsck >"$T/fsck" 2>&1; rc=$?
expect_eq "fsck finds no errors" 0 "$rc"
finish
