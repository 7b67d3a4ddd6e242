#!/usr/bin/env bash
# Train one shipped recipe, then write its JSON record to benchmarks/results/.
# The per-dataset scripts (run_scripts/wn9_img.sh, mkg_y.sh, mkg_w.sh) call this; use it directly
# for any config:
#
#   run_scripts/launch.sh LAUNCHER CONFIG [train.py arguments ...]
#
# LAUNCHER: python      one process            (python train.py ...)
#           torchrun2   two CPU processes      (torchrun --standalone --nproc_per_node 2 train.py ...)
#           accelerate  GPUs / nodes           (accelerate launch train.py ..., your accelerate config)
# Arguments after CONFIG go to train.py unchanged (section.field=value overrides, --resume, ...).
# Set KGT5MM_NO_RECORD=1 to skip the record (e.g. for a smoke run).
set -euo pipefail

if [[ $# -lt 2 || "$1" == "-h" || "$1" == "--help" ]]; then
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit $(( $# < 2 ? 2 : 0 ))
fi
launcher=$1
config=$2
shift 2
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
[[ -f "$config" ]] || { echo "launch.sh: no such config: $config" >&2; exit 2; }

case "$launcher" in
    python) cmd=(python train.py) ;;
    torchrun2) cmd=(torchrun --standalone --nproc_per_node 2 train.py) ;;
    accelerate) cmd=(accelerate launch train.py) ;;
    *) echo "launch.sh: unknown launcher '$launcher' (python, torchrun2 or accelerate)" >&2; exit 2 ;;
esac
cmd+=(--config "$config" "$@")

# The run folder, as train.py will resolve it (the key=value overrides only; flags ignored).
overrides=()
for arg in "$@"; do
    [[ "$arg" == -* || "$arg" != *=* ]] || overrides+=("$arg")
done
run_dir=$(python -c 'import sys
from kgt5mm.config import Config
print(Config.from_yaml(sys.argv[1], sys.argv[2:]).run_dir)' "$config" ${overrides[@]+"${overrides[@]}"})

echo "+ ${cmd[*]}" >&2
start=$(date +%s)
"${cmd[@]}"
wall_minutes=$(python -c "print(round(($(date +%s) - $start) / 60, 1))")
echo "launch.sh: ${cmd[*]} took $wall_minutes min wall; run folder $run_dir" >&2

if [[ "${KGT5MM_NO_RECORD:-0}" != 1 ]]; then
    python benchmarks/record_run.py "$run_dir" --command "${cmd[*]}" --wall-minutes "$wall_minutes" \
        --trained-at "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
fi
