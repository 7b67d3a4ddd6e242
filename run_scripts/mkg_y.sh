#!/usr/bin/env bash
# MKG-Y (YAGO, from ../shared/data or data.data_dir=...), one recipe per profile, recorded in
# benchmarks/results/.
#
#   run_scripts/mkg_y.sh PROFILE [section.field=value ...]
#
# PROFILE: cpu         one process, 2 epochs, about 23 min                (mkg_y_cpu.yaml)
#          cpu-2proc   two processes on two cores, about 53 min           (mkg_y_cpu_2proc.yaml)
#          gpu         t5-small shape, bf16, accelerate launch            (mkg_y_gpu.yaml)
# Measured figures of each: BENCHMARKS.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_profile.sh" "${BASH_SOURCE[0]}" "$@"
