# Shared body of the per-dataset launch scripts (wn9_img.sh, mkg_y.sh, mkg_w.sh), which source it
# as  source _profile.sh SCRIPT PROFILE [train.py arguments ...].
# SCRIPT's header lists its profiles, each with its config "(name.yaml)"; the profile's kind
# picks the launcher; then launch.sh trains and records the run.
script=$1
shift
usage() { sed -n '2,/^set /p' "$script" | sed '$d' | sed 's/^# \{0,1\}//'; }
profile=${1:-}
case "$profile" in
    -h|--help) usage; exit 0 ;;
    cpu|cpu-hour) launcher=python ;;
    cpu-2proc) launcher=torchrun2 ;;
    gpu|lora) launcher=accelerate ;;
    *) usage >&2; exit 2 ;;
esac
config=$(sed -n "s/^# *\(PROFILE: *\)\{0,1\}$profile .*(\([a-z0-9_]*\.yaml\))\$/\2/p" "$script")
[[ -n "$config" ]] || { echo "$(basename "$script"): no profile '$profile' here" >&2; usage >&2; exit 2; }
shift
exec "$(dirname "$script")/launch.sh" "$launcher" "run_scripts/$config" "$@"
