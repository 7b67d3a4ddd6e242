#!/usr/bin/env bash
# MKG-W (Wikidata, from ../shared/data or data.data_dir=...), one recipe per profile, recorded in
# benchmarks/results/.
#
#   run_scripts/mkg_w.sh PROFILE [section.field=value ...]
#
# PROFILE: cpu         one process, 2 epochs, about 19 min                (mkg_w_cpu.yaml)
#          cpu-2proc   two processes on two cores, about 45 min           (mkg_w_cpu_2proc.yaml)
#          gpu         t5-small shape, bf16, accelerate launch            (mkg_w_gpu.yaml)
# Measured figures of each: BENCHMARKS.md.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
case "${1:-}" in
    cpu) launcher=python; config=mkg_w_cpu ;;
    cpu-2proc) launcher=torchrun2; config=mkg_w_cpu_2proc ;;
    gpu) launcher=accelerate; config=mkg_w_gpu ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
shift
exec "$here/launch.sh" "$launcher" "run_scripts/$config.yaml" "$@"
