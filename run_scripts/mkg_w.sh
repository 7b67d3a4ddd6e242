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
source "$(dirname "${BASH_SOURCE[0]}")/_profile.sh" "${BASH_SOURCE[0]}" "$@"
