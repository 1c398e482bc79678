#!/usr/bin/env bash
# Every GPU measurement the suite still owes (docs/performance.md#gpu), as one script for one
# NVIDIA GPU machine: run it from the repository root; results go under ${OUT:-gpu-out}/.
#
#   tests   the CUDA tests: rung (e) of the agreement ladder (determinism on CUDA, a seed alone vs
#           in a stack), CUDA-graph replays vs eager CUDA steps, the image track on CUDA, and the
#           minibatch layer on CUDA (no host reads);
#   bench   ganrepro bench on CUDA: the minibatch layer, the training table (PyTorch; TensorFlow
#           when its build sees the GPU) and the image step, beside the CPU tables already committed;
#   large   the large grid on the GPU, PyTorch only, timed (target: 10 minutes).
#
#   bash benchmarks/gpu_checks.sh [tests] [bench] [large]     (default: all three, in this order)
#
# Name one part per call where a call's time is capped (e.g. 10 minutes). Each part has its own
# time limit (seconds: STEP1, STEP2, STEP3) so that one slow part cannot take the others' time; the
# script goes on after a failed part and exits with the worst status.
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
status=0
step() {  # step LIMIT NAME COMMAND...
    local limit=$1 name=$2; shift 2
    echo "== $name (limit ${limit}s)" | tee -a "$OUT/steps.log"
    local start=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    echo "== $name: exit $rc after $((SECONDS - start)) s" | tee -a "$OUT/steps.log"
    tail -n 15 "$OUT/$name.log"
    [ "$rc" -gt "$status" ] && status=$rc
    return 0
}
python -c "import ganrepro" 2>/dev/null || python -m pip install --no-deps --no-build-isolation -q -e . \
    || { echo "cannot install ganrepro"; exit 1; }
# The machine may lack some of the project's dependencies (it installs with --no-deps and may have no
# network): say which are missing up front (the tests need pytest, the bench pandas and matplotlib).
python - <<'PY' | tee "$OUT/missing-modules.txt"
import importlib.util
wanted = ["numpy", "scipy", "tqdm", "sklearn", "threadpoolctl", "torch", "pandas", "matplotlib", "PIL", "pytest",
          "pytest_benchmark", "xdist", "tensorflow"]
missing = [m for m in wanted if importlib.util.find_spec(m) is None]
print("missing modules:", ", ".join(missing) if missing else "none")
PY
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())" \
    | tee "$OUT/device.txt"
parts=${*:-tests bench large}
for part in $parts; do
    case $part in
        tests) step "${STEP1:-300}" cuda-tests python -m pytest -q -p no:cacheprovider \
                   tests/test_ladder_e_devices.py tests/test_static_step.py tests/test_image_devices.py \
                   tests/test_minibatch_layer.py -k "cuda and not cpu_and_cuda_runs_agree" ;;
        bench) step "${STEP2:-420}" bench-cuda ganrepro bench --device cuda --parts minibatch,training,image \
                   --frameworks torch --out "$OUT/benchmarks" ;;
        large) step "${STEP3:-600}" large-cuda ganrepro sweep --grid large --device cuda --frameworks torch \
                   --runs "$OUT/runs-large-cuda" --quiet ;;
        *) echo "unknown part '$part'; allowed: tests, bench, large"; exit 2 ;;
    esac
done
exit "$status"
