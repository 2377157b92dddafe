/*
 * The `lupe` command: global options, the table of subcommands and the
 * dispatch to them. Every subcommand is one row below; help comes from the
 * same rows, so `lupe --help` cannot drift from what exists.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static const cli_cmd commands[] = {
    {"init", cmd_init, "create a workspace",
     "usage: lupe init [DIR]\n"
     "\n"
     "Creates a workspace in DIR (default: the current folder): a .lupe/ folder\n"
     "holding the SQLite database, the content-addressed object folder and a\n"
     "config file with the workspace's settings.\n"},
    {"ingest", cmd_ingest, "store images from files and folders",
     "usage: lupe ingest [--source NAME] [--tag KEY=VALUE]... [--include GLOB] PATH...\n"
     "\n"
     "Stores the images among PATHs (files, or folders searched recursively).\n"
     "Files are recognised by content, not by name; JPEG and PNG are accepted.\n"
     "An image already stored (same bytes) is reported as a duplicate and kept\n"
     "once. Files that are not whole, valid images are rejected with a reason\n"
     "and the batch goes on.\n"
     "\n"
     "options:\n"
     "  -s, --source NAME     where the images come from (camera, line, person)\n"
     "  -t, --tag KEY=VALUE   free tag recorded on each image; may repeat\n"
     "  -i, --include GLOB    in folders, take only files whose name matches GLOB\n"
     "                        (such as '*.jpg'); files named directly are always taken\n"
     "\n"
     "exit status: 0 all stored or duplicate, 3 some files rejected, 1 failure\n"},
    {"images", cmd_images, "list stored images",
     "usage: lupe images [--tag KEY=VALUE]... [--source NAME] [--limit N] [--json]\n"
     "\n"
     "Lists stored images, oldest ingest first, with their metadata.\n"
     "\n"
     "options:\n"
     "  -t, --tag KEY=VALUE   only images with this tag; may repeat (all must match)\n"
     "  -s, --source NAME     only images from this source\n"
     "  -n, --limit N         at most N images\n"
     "  -j, --json            a JSON array of objects instead of a table\n"},
    {"labelset", cmd_labelset, "manage label sets and their classes",
     "usage: lupe labelset create NAME CLASS...\n"
     "       lupe labelset list\n"
     "       lupe labelset show NAME\n"
     "       lupe labelset add-class NAME CLASS\n"
     "       lupe labelset rename-class NAME OLD NEW\n"
     "\n"
     "A label set is a name and an ordered list of classes; a class's id is its\n"
     "position. Adding and renaming classes are recorded (see 'show').\n"},
    {"label", cmd_label, "label images, review labels, see the queue and jobs",
     "usage: lupe label set IMAGE (--box CLASS,X,Y,W,H... | --empty) [--submit] [--comment TEXT]\n"
     "       lupe label review IMAGE (--approve | --reject [--verdict V] | --adjust --box ...)\n"
     "       lupe label show IMAGE          the newest revision\n"
     "       lupe label history IMAGE       every revision, oldest first\n"
     "       lupe label queue [--limit N]   images that need work, by priority\n"
     "       lupe label job create [--count N] [--name NAME] [--assignee U] [--reviewer U]\n"
     "       lupe label job list | show ID\n"
     "\n"
     "IMAGE is an image id or a unique prefix of one. Boxes are in pixels of the\n"
     "stored image, top-left corner and size; CLASS is a class name or index.\n"
     "Every change adds a revision; nothing is overwritten. A review must come\n"
     "from someone other than the label's author.\n"
     "\n"
     "options:\n"
     "  -L, --labelset NAME   label set (default: default)\n"
     "      --empty           the image has no objects (a labeled negative)\n"
     "      --submit          submit for review (default: save a draft)\n"
     "      --source S        human (default) or model, for pre-labels\n"
     "      --author NAME     who labels (default: $LUPE_USER or $USER)\n"
     "      --reviewer NAME   who reviews (default: as --author)\n"
     "      --verdict V       for --reject/--adjust: missed_object, box_inaccurate,\n"
     "                        wrong_class or other\n"
     "      --count N         images per job (default 50)\n"},
    {"import", cmd_import, "import labels (and their images) or an ONNX model made by other tools",
     "usage: lupe import --format F [options] PATH\n"
     "       lupe import onnx FILE [--plan] [--json] [--threads N] [--bench RUNS] [--out COPY]\n"
     "\n"
     "Reads a label file (gt-csv, gt-manifest, coco) or folder (yolo, voc),\n"
     "ingests the images it references and adds an approved label revision\n"
     "(source: import) for each labeled image. Image references are looked up\n"
     "under --images, trying ever shorter tails of the reference (so\n"
     "s3://bucket/a/b/c.jpg finds DIR/b/c.jpg), then among stored images.\n"
     "Every skipped row, image or box is listed with its reason.\n"
     "\n"
     "options:\n"
     "  -f, --format F        gt-csv, gt-manifest, yolo, coco or voc\n"
     "  -i, --images DIR      where the images are (default: the label file's folder)\n"
     "  -L, --labelset NAME   label set to add to (default: default; created if missing)\n"
     "  -c, --classes A,B     names of the file's class ids 0, 1, ... (gt-csv has none)\n"
     "      --add-classes     add classes the label set lacks instead of skipping their boxes\n"
     "      --status S        status of the new revisions (default approved)\n"
     "      --author NAME     author of the new revisions (default import)\n"
     "      --source NAME     source recorded on the ingested images\n"
     "      --strict          any problem fails the import and nothing is written\n"
     "\n"
     "exit status: 0 everything imported, 3 something was skipped, 1 failure\n"
     "\n"
     "lupe import onnx FILE loads a detection model exported by another tool (a\n"
     "YOLOv8 export by Ultralytics or torch.onnx.export: one float32 input\n"
     "[1, 3, H, W] of fixed size, one output, opsets 7 to 21) into lupe's inference\n"
     "engine, which checks every node, attribute, shape and weight, and prints the\n"
     "input and output, the class names of the 'names' metadata, the operators and\n"
     "the plan (folded nodes, fused convolutions, memory). No workspace is needed.\n"
     "An operator or attribute lupe does not run fails naming the node; see\n"
     "docs/onnx.md for what is supported.\n"
     "\n"
     "options of the onnx form:\n"
     "  -p, --plan            also list the run-time steps (fusions, layouts, kernels);\n"
     "                        with --bench, each step's median time\n"
     "  -j, --json            print the summary as JSON\n"
     "  -t, --threads N       threads for planning and --bench (default: all cores)\n"
     "  -b, --bench RUNS      time RUNS forward passes after one warm-up run\n"
     "  -o, --out COPY        write a copy of the validated file to COPY (atomically)\n"
     "\n"
     "exit status: 0 loaded, 1 the file is not a model lupe can run, 2 bad command line\n"},
    {"synth", cmd_synth, "make synthetic tag images with exact defect boxes",
     "usage: lupe synth --count N --out DIR [--seed S] [--first I] [--size WxH]\n"
     "                  [--classes scratch,dent,stain] [--min N] [--max N] [--empty F]\n"
     "                  [--engrave F] [--quality Q] [--format yolo]\n"
     "                  [--montage FILE.png [--real DIR]] [--ingest [--labelset NAME]]\n"
     "\n"
     "Renders N images of metal tags like the inspection photos (brushed metal,\n"
     "hole, clamp, lighting, reflections, noise, blur, slight rotation and\n"
     "perspective) with scratches and, if asked, dents and stains. Each box is\n"
     "the tight box of the pixels its defect changed. Image I of seed S is the\n"
     "same on every run and machine: a set is described by its options alone.\n"
     "\n"
     "DIR is written as a YOLO folder: images/synth-S-I.jpg, labels/synth-S-I.txt\n"
     "(class cx cy w h; an empty file for an image without defects),\n"
     "classes.txt and data.yaml; class ids are scratch 0, dent 1, stain 2. DIR\n"
     "must not exist; it appears complete or not at all.\n"
     "\n"
     "options:\n"
     "  -n, --count N         images to make (required)\n"
     "  -o, --out DIR         folder to write (required)\n"
     "  -s, --seed S          which stream of images (default 1)\n"
     "      --first I         index of the first image (default 0), to extend a set:\n"
     "                        --first 1000 --count 1000 follows --count 1000\n"
     "      --size WxH        image size (default 450x300, the photos' size)\n"
     "  -c, --classes LIST    classes to plant: scratch, dent, stain, comma-separated\n"
     "                        (default scratch)\n"
     "      --min N           fewest defects on an image with defects (default 1)\n"
     "      --max N           most defects on an image (default 5)\n"
     "      --empty F         share of images with no defect (default 0.1)\n"
     "      --engrave F       share of tags with engraved text (default 0.25)\n"
     "      --quality Q       JPEG quality, 50 to 100 (default 92)\n"
     "  -f, --format F        yolo (the only format written)\n"
     "  -m, --montage FILE    also write a grid of the first 16 images with their\n"
     "                        boxes (.png or .jpg)\n"
     "      --real DIR        make the montage a comparison instead: rows of 4\n"
     "                        synthetic images (no boxes) between rows of 4 photos\n"
     "                        taken from the JPEG and PNG files under DIR\n"
     "      --ingest          then import DIR into the workspace, as\n"
     "                        'lupe import --format yolo DIR' would (images get\n"
     "                        source synth, labels author synth, status approved)\n"
     "  -L, --labelset NAME   label set for --ingest (default: default; classes the\n"
     "                        set lacks are added)\n"
     "\n"
     "exit status: 0 done, 1 failure, 2 bad command line, 3 --ingest skipped some\n"},
    {"dataset", cmd_dataset, "freeze, compare and export dataset versions",
     "usage: lupe dataset create NAME [--from-labels approved|submitted] [--split 70/15/15]\n"
     "                               [--group-by REGEX|tag:KEY] [--seed N] [--labelset S]\n"
     "                               [--split-from DIR]\n"
     "       lupe dataset list\n"
     "       lupe dataset show NAME[@N]\n"
     "       lupe dataset stats NAME[@N]\n"
     "       lupe dataset diff A B\n"
     "       lupe dataset export NAME[@N] --format yolo|coco|voc|gt-manifest|gt-csv --out DIR\n"
     "\n"
     "create freezes the newest approved label of every image of the label set\n"
     "into an immutable manifest, NAME@N, whose id is its SHA-256. Images are\n"
     "grouped (--group-by: an extended regex over the file name whose first\n"
     "capture group names the group, or tag:KEY) and a group is never split\n"
     "across train, val and test. Images keep their split from NAME@N-1.\n"
     "--split-from DIR takes the split from DIR/train.txt, val.txt, test.txt\n"
     "(file names). If nothing changed, no new version is made.\n"},
    {"train", cmd_train, "train a detector on a dataset version or a YOLO folder",
     "usage: lupe train DATA [options]\n"
     "       lupe train --resume RUN\n"
     "\n"
     "Trains a YOLOv8-style detector from scratch (or from --init) with YOLOv8's\n"
     "recipe: task-aligned assigner, CIoU + DFL + BCE losses, mosaic (off for the\n"
     "last epochs), HSV jitter, flips, scale and translate, warmup, linear or\n"
     "cosine decay, accumulation to a nominal batch of 64, EMA weights. DATA is a\n"
     "dataset version (NAME@N, NAME, or an id prefix) or a YOLO folder. Every\n"
     "epoch the EMA weights are validated; best.ckpt has the best fitness\n"
     "(0.1 mAP50 + 0.9 mAP50-95). At the end best.ckpt is evaluated on val and test.\n"
     "The run folder holds config.json, results.csv, plots and weights/. ^C stops\n"
     "after the current batch and saves weights/last.ckpt; --resume continues\n"
     "exactly where it stopped.\n"
     "\n"
     "options:\n"
     "  -s, --scale n|s          model scale (default n)\n"
     "  -i, --imgsz N            input size, a multiple of 32 (default 480)\n"
     "  -b, --batch N            batch size (default 16)\n"
     "  -e, --epochs N           epochs (default 100)\n"
     "  -t, --time-budget T      train for a wall time (90s, 10m, 1.5h): the number of\n"
     "                           epochs and the schedule are fitted to it\n"
     "  -o, --out DIR            run folder (default runs/train-N)\n"
     "  -S, --seed N             seed of every random choice (default 0)\n"
     "      --resume RUN         continue the run in folder RUN\n"
     "      --init CKPT|RUN      start from a checkpoint's weights, or a run's best.ckpt\n"
     "                           (pretraining: lupe synth, lupe train on it, then --init)\n"
     "      --pretrain synth:N[:T]  pretrain on N synthetic tags for T (default 15m) first,\n"
     "                           then start from those weights; made once in\n"
     "                           runs/pretrain-synthN-..., reused by later runs\n"
     "      --optimizer O        auto (YOLOv8's choice), sgd or adamw (default auto)\n"
     "      --lr0 X, --lrf X     initial learning rate (sgd/adamw) and final fraction (0.01)\n"
     "      --cos-lr             cosine decay instead of linear\n"
     "      --nbs N              nominal batch for accumulation (default 64); 16 at batch 16\n"
     "                           steps 4x as often: better for short runs on small sets\n"
     "      --warmup-epochs X    warmup length (default 3; at least 100 iterations)\n"
     "      --close-mosaic N     last epochs without mosaic (default 10)\n"
     "      --mosaic P, --fliplr P, --flipud P, --scale-aug G\n"
     "                           augmentation probabilities and scale gain\n"
     "                           (defaults 1.0, 0.5, 0.0, 0.5)\n"
     "      --no-augment         no mosaic, HSV, flips, scale or translate (give it\n"
     "                           before the options above to keep some of them)\n"
     "      --val-every N        validate every N epochs (default 1; the last always)\n"
     "      --workers N          data loading threads (default 2)\n"
     "      --threads N          compute threads (default: all cores)\n"
     "      --precision P        auto (bf16 where the CPU has it), f32 or bf16\n"
     "      --no-previews        do not draw validation previews\n"
     "      --stop-after N       stop as ^C does after N iterations (scripted tests of --resume)\n"
     "      --register G         register the finished run as a version of model group G\n"
     "                           and gate it (see 'lupe models --help')\n"
     "      --gate RULES         with --register: the gate's rules (default map50_95>=0.4)\n"},
    {"val", cmd_val, "evaluate a trained detector on a split",
     "usage: lupe val MODEL DATA [--split test|val|train] [options]\n"
     "\n"
     "Evaluates MODEL (a run folder, whose weights/best.ckpt is used, or a\n"
     "checkpoint) on a split of DATA (a dataset version or a YOLO folder):\n"
     "COCO-style mAP50 and mAP50-95 (101-point interpolation), precision and\n"
     "recall at the confidence of maximum F1, per-class AP.\n"
     "\n"
     "options:\n"
     "  -s, --split S            split to evaluate (default test)\n"
     "  -c, --conf X             confidence threshold of detections (default 0.001)\n"
     "  -u, --iou X              NMS IoU threshold (default 0.7)\n"
     "  -b, --batch N            images per forward pass (default 16)\n"
     "  -p, --plots DIR          write PR/F1/P/R curves, confusion matrix and a preview\n"
     "  -T, --threads N          compute threads (default: all cores)\n"
     "  -P, --precision P        auto, f32 or bf16\n"
     "  -j, --json               metrics as JSON\n"},
    {"predict", cmd_predict, "detect defects in images with a trained model",
     "usage: lupe predict MODEL IMAGE|FOLDER... [--conf X] [--iou X] [--json]\n"
     "                    [--save-previews DIR] [--precision f32|bf16|int8] [--threads N]\n"
     "                    [--calib DATA [--calib-images K]] [--max-det N] [--imgsz N]\n"
     "                    [--key NAME | --pubkey HEX]\n"
     "\n"
     "MODEL is a run folder (its weights/best.ckpt), a checkpoint, a registry\n"
     "version of the workspace (GROUP:V, GROUP@ALIAS, or GROUP for its newest),\n"
     "a model package folder, or an ONNX file in the YOLOv8 layout. A package is\n"
     "verified first (signature, manifest, every file's hash) with --pubkey, --key,\n"
     "or the workspace's key whose id its manifest names, and refused naming the\n"
     "check that failed. An ONNX file runs in f32 at its own input size.\n"
     "\n"
     "It runs on each image (JPEG or PNG; a folder stands for the images in it):\n"
     "the letterbox of validation, the network in inference mode (batch norm folded,\n"
     "SiLU fused, memory planned once), decoding and class-aware NMS, then the\n"
     "boxes in the original image's pixels, clipped to it. One line per image and\n"
     "one per detection (class, score, x1 y1 x2 y2), or with --json one JSON\n"
     "object per image: file, width, height, detections [{class, name, score,\n"
     "box [x1, y1, x2, y2]}], latency_ms (letterbox, network and NMS).\n"
     "An image that cannot be read is reported, naming it, and the others are\n"
     "still processed.\n"
     "\n"
     "int8 needs a calibration: the ranges of the activations over some images,\n"
     "kept in a file next to the checkpoint (X.ckpt -> X.calib; a package's\n"
     "PKG/.weights.calib, which verification ignores; a registry version's in\n"
     ".lupe/calib/). --calib DATA makes it (again) from K images spread over\n"
     "DATA's train split (a dataset version or a YOLO folder); later runs reuse it.\n"
     "\n"
     "options:\n"
     "  -c, --conf X             confidence threshold (default 0.25)\n"
     "  -u, --iou X              NMS IoU threshold (default 0.7)\n"
     "      --max-det N          most detections per image (default 300)\n"
     "  -j, --json               one JSON object per image on stdout\n"
     "  -o, --save-previews DIR  draw the boxes on each image into DIR/NAME.jpg\n"
     "  -P, --precision P        f32 (default), bf16 (AVX512_BF16 or AMX) or int8\n"
     "  -T, --threads N          compute threads (default: all cores)\n"
     "      --calib DATA         calibrate int8 on DATA's train split first\n"
     "      --calib-images K     images to calibrate on (default 32)\n"
     "      --imgsz N            input size (default: the model's)\n"
     "      --key NAME           verify a package with this workspace key\n"
     "      --pubkey HEX         verify a package with this public key (no workspace needed)\n"
     "\n"
     "exit status: 0 all images done, 3 some images could not be read, 1 failure\n"},
    {"bench", cmd_bench, "run a benchmark program (inference against ONNX Runtime)",
     "usage: lupe bench infer [--model CKPT|RUN] [--onnx FILE | --no-export] [--imgsz 480] [--runs 60]\n"
     "                        [--rounds 3] [--batch 8] [--threads 1,2] [--calib FILE]\n"
     "                        [--precisions f32,bf16,int8]\n"
     "       lupe bench infer-acc --model RUN|CKPT --data NAME@V [--split test] [--ws DIR]\n"
     "                        [--precisions f32,bf16,int8] [--calib-images 32] [--recalibrate]\n"
     "\n"
     "Runs build/release/bin/bench_infer or bench_infer_acc (found next to this\n"
     "binary or in the tree's release build; `make bench` builds them) with the\n"
     "arguments given. They are separate programs because they load ONNX Runtime,\n"
     "which lupe never links.\n"
     "\n"
     "infer: YOLOv8 latency (median, p90, p99) at batch 1 with each thread count,\n"
     "images/s at --batch, and each configuration's peak memory, for f32, bf16\n"
     "and int8, next to ONNX Runtime running lupe's ONNX export of the same\n"
     "weights (or --onnx FILE) in the same run, with the ratios. Without --model\n"
     "the weights are random (fixed seed); the checkpoint, its export and its\n"
     "calibration go to build/bench-infer/.\n"
     "infer-acc: mAP50 and mAP50-95 of a trained model on a split in each\n"
     "precision, and the differences from f32.\n"
     "See docs/inference.md for the method and figures.\n"},
    {"export", cmd_export, "export a trained detector as an ONNX file",
     "usage: lupe export onnx MODEL [--out FILE] [--imgsz N]\n"
     "       lupe export onnx --inspect FILE\n"
     "\n"
     "Writes MODEL (a checkpoint, or a run folder, whose weights/best.ckpt is\n"
     "used) as an ONNX file (opset 17) in the layout Ultralytics YOLOv8 exports,\n"
     "so tools made for those models run it: input 'images' [1, 3, N, N],\n"
     "float32 RGB in 0..1; output 'output0' [1, 4 + classes, anchors]: box\n"
     "centre x, y, width, height in input pixels, then each class's score, with\n"
     "no NMS. Batch norm is folded into the convolutions; the class names, stride\n"
     "and input size are in the file's metadata (see docs/onnx.md).\n"
     "--inspect prints a summary of any ONNX file: producer, opset, node count.\n"
     "\n"
     "options:\n"
     "  -o, --out FILE     the ONNX file to write (default: the checkpoint's path\n"
     "                     with .onnx, as runs/x/weights/best.onnx)\n"
     "  -i, --imgsz N      input size, a multiple of 32 (default: the size the\n"
     "                     model was trained at)\n"
     "      --inspect      summarise FILE instead of exporting\n"},
    {"models", cmd_models, "register, judge, approve, alias, compare and package models",
     "usage: lupe models register RUN --group G [--gate RULES | --no-gate] [--by NAME] [--note TEXT]\n"
     "       lupe models list [GROUP]\n"
     "       lupe models show G:V|G@ALIAS|G [--json]\n"
     "       lupe models approve|reject|archive G:V --why TEXT [--by NAME]\n"
     "       lupe models alias GROUP NAME VERSION [--why TEXT] [--by NAME]\n"
     "       lupe models aliases [GROUP]\n"
     "       lupe models gate G:V [--gate RULES]\n"
     "       lupe models compare A B [--data REF] [--split S] [--conf X] [--top N]\n"
     "       lupe models package G:V --key NAME --out DIR [--by NAME]\n"
     "       lupe models verify DIR (--pubkey HEX | --key NAME)\n"
     "\n"
     "A model group (such as tag-scratch) holds versions 1, 2, 3... Registering a\n"
     "finished run (its metrics.json, config.json and weights/best.ckpt) records the\n"
     "architecture, classes, dataset, lupe commit, hyperparameters, val and test\n"
     "metrics and who registered it; the weights and results.csv are copied into\n"
     "the object store, so the version outlives the run folder. A new version is\n"
     "pending and then gated: every RULE must hold (default map50_95>=0.4 on the\n"
     "test split) AND its test mAP50-95 must beat the version the 'production'\n"
     "alias points to (evaluated again on this version's test split if it was\n"
     "measured on another dataset). Passing approves it (by 'gate'); failing leaves\n"
     "it pending with the reason printed. Status changes: pending -> approved or\n"
     "rejected, approved or rejected -> archived; each records who, when and why.\n"
     "An alias points at a version ('production' only at an approved one); moves\n"
     "are recorded. compare prints both versions' metrics, then runs both on a\n"
     "split and lists the images where their boxes disagree most. package writes\n"
     "a folder (weights.ckpt, results.csv, model.onnx: the ONNX export,\n"
     "manifest.json with the SHA-256 of every file, manifest.sig: Ed25519 over\n"
     "the manifest) signed with a key of 'lupe keys'; verify checks the\n"
     "signature, then every file, and says which check failed. lupe predict runs\n"
     "versions and packages (verified first). The who of a change is --by, else $LUPE_USER, else the login.\n"
     "\n"
     "options:\n"
     "  -g, --group G         model group to register into (made on first use)\n"
     "  -G, --gate RULES      gate rules, comma-separated: [val.|test.]METRIC OP NUMBER\n"
     "                        with METRIC p, r, f1, map50 or map50_95 and OP >=, >, <=\n"
     "                        or < (default map50_95>=0.4; test split unless val.)\n"
     "      --no-gate         register only: the version stays pending\n"
     "  -b, --by NAME         who the change is recorded under\n"
     "  -n, --note TEXT       a note kept with the version\n"
     "  -w, --why TEXT        the reason for a status change or alias move\n"
     "  -j, --json            show: the whole record as JSON\n"
     "  -d, --data REF        compare: dataset version or folder (default: A's dataset)\n"
     "  -s, --split S         compare: split to run on (default test)\n"
     "  -c, --conf X          compare: boxes counted from this score (default 0.25)\n"
     "  -t, --top N           compare: images listed (default 5)\n"
     "  -k, --key NAME        package: signing key; verify: its public half\n"
     "  -o, --out DIR         package: folder to create (must not exist)\n"
     "  -p, --pubkey HEX      verify: the public key (64 hex digits, 'lupe keys export')\n"
     "      --threads N       compute threads for evaluations (default: all cores)\n"
     "\n"
     "exit status: 0 done, 1 failure (verify: a check failed), 2 bad command line,\n"
     "3 registered or gated but the gate failed (the version stays pending)\n"},
    {"keys", cmd_keys, "create and list the keys that sign model packages",
     "usage: lupe keys create NAME\n"
     "       lupe keys list\n"
     "       lupe keys export NAME\n"
     "\n"
     "A key is an Ed25519 pair in the workspace: .lupe/keys/NAME.key (the secret,\n"
     "mode 0600) and NAME.pub (the public key, 64 hex digits). Its id is the first\n"
     "16 hex digits of the public key's SHA-256; manifests name it. export prints\n"
     "the public key alone, to give to devices and to 'lupe models verify --pubkey'.\n"},
    {"fsck", cmd_fsck, "check that the database and the objects agree",
     "usage: lupe fsck [--quick] [--repair]\n"
     "\n"
     "Checks the database's integrity, that every object's bytes hash to its\n"
     "name and that every image's object exists. Leftovers of interrupted\n"
     "work (unreferenced objects, temp files) are warnings.\n"
     "\n"
     "options:\n"
     "  -q, --quick    skip hashing object contents\n"
     "  -r, --repair   remove leftovers (temp files of dead processes, and\n"
     "                 unreferenced objects older than 10 minutes)\n"
     "\n"
     "exit status: 0 no errors (warnings allowed), 1 errors found\n"},
    {"status", cmd_status, "summarise the workspace",
     "usage: lupe status [--json]\n"
     "\n"
     "Prints the workspace's location, schema version and what it holds.\n"},
    {"version", cmd_version, "print version and build information",
     "usage: lupe version\n"},
    {"help", cmd_help, "show help for a command",
     "usage: lupe help [COMMAND]\n"},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const char global_help[] =
    "lupe: visual quality inspection at the edge, the whole ML loop in C.\n"
    "\n"
    "usage: lupe [-w DIR] [-q] [--log-json] [-v] COMMAND [ARGS]\n"
    "\n"
    "global options:\n"
    "  -w, --workspace DIR   use the workspace in DIR (default: the nearest\n"
    "                        .lupe/ in the current folder or its parents)\n"
    "  -q, --quiet           print only errors and results\n"
    "  -v, --verbose         more log output (repeat for more)\n"
    "      --log-json        log as JSON lines\n"
    "  -h, --help            this help; `lupe COMMAND --help` for a command\n"
    "\n"
    "commands:\n";

const cli_cmd *cli_find(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

static void print_global_help(FILE *f)
{
    fputs(global_help, f);
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\nThe environment: LUPE_LOG=error|warn|info|debug|trace, LUPE_LOG_FORMAT=text|json.\n", f);
}

int cli_print_help(const char *cmd)
{
    const cli_cmd *c = cli_find(cmd);
    if (!c) return cli_usage_error("help", "unknown command '%s'", cmd);
    printf("lupe %s: %s\n\n%s", c->name, c->summary, c->help);
    return EXIT_OK;
}

int cmd_help(cli_ctx *ctx, int argc, char **argv)
{
    (void)ctx;
    if (argc > 1) return cli_print_help(strcmp(argv[1], "--help") && strcmp(argv[1], "-h") ? argv[1] : "help");
    print_global_help(stdout);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    cli_ctx ctx = {0};
    int verbose = 0, log_json = 0;
    static const struct option opts[] = {
        {"workspace", required_argument, NULL, 'w'}, {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},         {"log-json", no_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},            {"version", no_argument, NULL, 'V'},
        {0},
    };
    /* '+' stops at the first non-option: the subcommand owns the rest. */
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+w:qvh", opts, NULL)) != -1) {
        switch (c) {
        case 'w': ctx.workspace = optarg; break;
        case 'q': ctx.quiet = 1; break;
        case 'v': verbose++; break;
        case 'J': log_json = 1; break;
        case 'h': print_global_help(stdout); return EXIT_OK;
        case 'V': return cmd_version(&ctx, 0, NULL);
        default:
            fprintf(stderr, "lupe: unknown option '%s'\n\n", argv[optind - 1]);
            print_global_help(stderr);
            return EXIT_USAGE;
        }
    }
    lupe_log_level level = ctx.quiet ? LUPE_LOG_WARN : verbose >= 2 ? LUPE_LOG_TRACE : verbose ? LUPE_LOG_DEBUG
                                                                                                : LUPE_LOG_INFO;
    lupe_log_init(level, log_json ? LUPE_LOG_JSON : LUPE_LOG_TEXT, "lupe");
    if (lupe_base_init() != LUPE_OK) {
        fprintf(stderr, "lupe: %s\n", lupe_errmsg());
        return EXIT_FAIL;
    }
    if (optind >= argc) {
        print_global_help(stderr);
        return EXIT_USAGE;
    }
    const cli_cmd *cmd = cli_find(argv[optind]);
    if (!cmd) {
        fprintf(stderr, "lupe: unknown command '%s' (see 'lupe --help')\n", argv[optind]);
        return EXIT_USAGE;
    }
    int sub_argc = argc - optind;
    char **sub_argv = argv + optind;
    optind = 0; /* 0, not 1: makes GNU getopt re-initialise (permuting again) for the subcommand */
    opterr = 1;
    return cmd->fn(&ctx, sub_argc, sub_argv);
}
