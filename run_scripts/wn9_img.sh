#!/usr/bin/env bash
# WN9-IMG (embedded: no data folder needed), one recipe per profile, recorded in benchmarks/results/.
#
#   run_scripts/wn9_img.sh PROFILE [section.field=value ...]
#
# PROFILE: cpu         the README's main job, 10-17 min on 2 cores       (wn9_img_cpu.yaml)
#          cpu-hour    one process on one core, about 54 min              (wn9_img_cpu_60min.yaml)
#          cpu-2proc   two processes on two cores, about 56 min           (wn9_img_cpu_2proc.yaml)
#          gpu         t5-small shape, bf16, accelerate launch            (wn9_img_gpu.yaml)
#          lora        pretrained t5-small with LoRA adapters             (t5_small_lora.yaml)
# Measured figures of each: BENCHMARKS.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_profile.sh" "${BASH_SOURCE[0]}" "$@"
