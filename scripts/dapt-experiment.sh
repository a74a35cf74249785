#!/usr/bin/env bash
# Does `shoppulse train --unlabeled` help on a shop the labels never covered? (issue 17, docs/model.md)
#
#   scripts/dapt-experiment.sh DATA OUT CATEGORY [CATEGORY ...]
#
# For each category: hold its labels out (models/evaluation/holdout_category.py), then score on its
# dev reviews (1) the classical baseline, (2) `shoppulse train` without its texts, (3) the same with
# its unlabeled train texts (--unlabeled). Torch dev metrics (--no-bundle): the three differ only
# in what they were trained on. Prints one JSON line per category at the end (OUT/summary.jsonl).
#
# Environment: PY (python with shoppulse[train]; default python3), TRAIN_ARGS (extra train options,
# e.g. a shortened recipe "--pretrain-epochs 1 --epochs 2" or "--device cuda --threads 4"),
# PARALLEL=1 runs every arm at once (a machine with cores and a GPU to spare).
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 DATA OUT CATEGORY [CATEGORY ...]" >&2
    exit 2
fi
data=$1 out=$2
shift 2
PY=${PY:-python3}
read -r -a train_args <<<"${TRAIN_ARGS:-}"
mkdir -p "$out"

arm() {  # name, then train options
    local dir=$1 name=$2
    shift 2
    "$PY" -m shoppulse.export.train_cli --data "$dir/data" --out "$dir/$name" --no-bundle --no-progress \
        "${train_args[@]}" "$@" >"$dir/$name.json" 2>"$dir/$name.log"
}

pids=()
for category in "$@"; do
    dir=$out/$category
    "$PY" -m shoppulse.models.evaluation.holdout_category --data "$data" --category "$category" --out "$dir/data"
    jobs=(
        "\"$PY\" -m shoppulse.models.evaluation.baseline --data \"$dir/data\" >\"$dir/baseline.json\""
        "arm \"$dir\" plain"
        "arm \"$dir\" adapted --unlabeled \"$dir/data/unlabeled.txt\""
    )
    for job in "${jobs[@]}"; do
        if [ "${PARALLEL:-0}" = 1 ]; then
            eval "$job" &
            pids+=($!)
        else
            eval "$job"
        fi
    done
done
for pid in "${pids[@]}"; do wait "$pid"; done

"$PY" - "$out" "$@" <<'PYEOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
with open(out / "summary.jsonl", "w", encoding="utf-8") as summary:
    for category in sys.argv[2:]:
        d = out / category
        last = lambda name: json.loads((d / name).read_text(encoding="utf-8").strip().splitlines()[-1])
        report = lambda arm: json.loads((d / arm / "train_report.json").read_text(encoding="utf-8"))
        row = {
            "category": category,
            "dev_n": last("plain.json")["dev_n"],
            "baseline": last("baseline.json")["baseline"]["sentiment"]["dev"]["accuracy"],
            "without_unlabeled": last("plain.json")["dev_torch"]["sentiment"]["accuracy"],
            "with_unlabeled": last("adapted.json")["dev_torch"]["sentiment"]["accuracy"],
            "unlabeled_texts": report("adapted")["training"]["phases"]["adapt"]["texts"],
            "train_wall_s": {a: report(a)["training"]["train_wall_s"] for a in ("plain", "adapted")},
            "device": report("plain")["training"]["device"],
        }
        print(json.dumps(row, ensure_ascii=False))
        summary.write(json.dumps(row, ensure_ascii=False) + "\n")
PYEOF
