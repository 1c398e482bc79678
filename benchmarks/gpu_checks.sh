#!/usr/bin/env bash
# Every GPU measurement the suite owes (docs/performance.md#gpu), as one script for one NVIDIA GPU
# machine: run it from the repository root; results go under ${OUT:-gpu-out}/.
#
#   bench   ganrepro bench on CUDA, PyTorch: the training table, the minibatch layer and the image
#           step (one call each), written into a copy of
#           reports/benchmarks so that the CUDA tables sit beside the committed CPU tables
#           (vs_cpu filled in) and the folder's README names both devices;
#   pytest-bench  the same cases under pytest-benchmark (`pytest benchmarks -k cuda`), JSON kept;
#   large   the large grid on the GPU, PyTorch only, timed (target: 10 minutes); its runs stay on
#           the machine, every run's metrics.json comes back in one archive;
#   tests   the CUDA tests: determinism on CUDA, a seed alone vs in a stack, CUDA-graph replays vs
#           eager steps, the image track and the minibatch layer on CUDA, sorting on CUDA;
#   probe   which operations give a seed other bits in a stack of another size on CUDA
#           (benchmarks/probe_stack_invariance.py);
#   fused   the fused training step (one Triton kernel per step, CUDA's default for protocol 2017 without
#           technique terms) at S = 1 and 65,536 (FUSED_STACKS) with the launch shapes FUSED_SHAPES
#           ("BLOCK_S,warps"; default: "default 8,8 1,4 16,4": the module's, then 32, 128 and 8 threads per seed),
#           with benchmarks/probe_compiled_step.py; if no fused case runs, the parts after it run with
#           GANREPRO_CUDA_FUSED=0 (the compiled step), and say so;
#   compiled  the compiled training step against the eager step's graph and linear's matmul form
#           (benchmarks/probe_compiled_step.py; PROBE_STACKS, PROBE_FLAGS); if no compiled case runs, the parts after it
#           run with GANREPRO_CUDA_COMPILE=0 (the eager step), and say so;
#   tiles   the minibatch layer's Triton kernels with other block sizes and warps
#           (benchmarks/probe_triton_tiles.py);
#   rung-e  rung (e) of the agreement ladder: whole runs of every cell, CPU vs CUDA (float64, float32).
#
#   bash benchmarks/gpu_checks.sh [fused] [compiled] [bench] [pytest-bench] [large] [tests] [probe] [tiles] [rung-e]
#   (default: all, in this order; about 15 minutes on an H200: name the parts to fit a call)
#
# The timed parts come first, on an idle GPU; the tests run in parallel (pytest-xdist) after them.
# BENCH_PARTS names the bench's tables (default: training minibatch image).
# Each part has its own time limit in seconds (LIMIT_BENCH_TRAINING, _MINIBATCH, _IMAGE,
# LIMIT_PYTEST_BENCH, LIMIT_LARGE, LIMIT_TESTS, LIMIT_PROBE, LIMIT_FUSED, LIMIT_COMPILED, LIMIT_TILES, LIMIT_RUNG_E)
# so that one slow part cannot take the others' time; the script goes on after a failed part and
# exits with the worst status. PACK=FILE: after every part, everything under OUT except the runs is
# packed into FILE (a .tar.gz), so that a call cut short still returns what was measured.
#
# A dry run on a machine without a GPU checks the script itself (under 2 minutes on 2 cores; the CUDA
# tests skip, fused and compiled run the eager step, so the parts after them say they fall back):
#   DEVICE=cpu GRID=smoke BENCH_FLAGS=--quick FUSED_STACKS=1 PROBE_STACKS=1 bash benchmarks/gpu_checks.sh
set -u
OUT=${OUT:-gpu-out}
DEVICE=${DEVICE:-cuda}
GRID=${GRID:-large}
PY=${PYTHON:-python3}
JOBS=${TEST_JOBS:-8}
mkdir -p "$OUT"
status=0
pack() {
    [ -n "${PACK:-}" ] && tar czf "$PACK" -C "$OUT" --exclude=./runs .
    return 0
}
step() {  # step LIMIT NAME COMMAND...
    local limit=$1 name=$2; shift 2
    echo "== $name (limit ${limit}s)" | tee -a "$OUT/steps.log"
    local start=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    echo "== $name: exit $rc after $((SECONDS - start)) s" | tee -a "$OUT/steps.log"
    tail -n 12 "$OUT/$name.log"
    [ "$rc" -gt "$status" ] && status=$rc
    pack
    return 0
}
"$PY" -c "import ganrepro" 2>/dev/null || "$PY" -m pip install --no-deps --no-build-isolation -q . \
    || { echo "cannot install ganrepro"; exit 1; }
# The machine may lack some of the project's dependencies (it installs with --no-deps and may have no
# network): say which are missing up front (the tests need pytest, the bench pandas and matplotlib).
"$PY" - <<'PY' | tee "$OUT/missing-modules.txt"
import importlib.util
wanted = ["numpy", "scipy", "tqdm", "sklearn", "threadpoolctl", "torch", "pandas", "matplotlib", "PIL", "pytest",
          "pytest_benchmark", "xdist", "tensorflow"]
missing = [m for m in wanted if importlib.util.find_spec(m) is None]
print("missing modules:", ", ".join(missing) if missing else "none")
PY
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda,
torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU seen')" | tee "$OUT/device.txt"
xdist=() xdist_e=()
"$PY" -c "import xdist" 2>/dev/null && xdist=(-n "$JOBS") xdist_e=(-n "${RUNG_E_JOBS:-12}")
parts=${*:-fused compiled bench pytest-bench large tests probe tiles rung-e}
for part in $parts; do
    case $part in
        bench) rm -rf "$OUT/benchmarks" && cp -r reports/benchmarks "$OUT/benchmarks"
               for what in ${BENCH_PARTS:-training minibatch image}; do  # one call each: tables are written when a call ends
                   limit_var=LIMIT_BENCH_${what^^}
                   step "${!limit_var:-100}" "bench-$what" "$PY" -m ganrepro bench --device "$DEVICE" \
                       --parts "$what" --frameworks torch ${BENCH_FLAGS:-} --out "$OUT/benchmarks"
               done ;;
        pytest-bench) step "${LIMIT_PYTEST_BENCH:-240}" pytest-bench "$PY" -m pytest benchmarks -k cuda -q \
                   -p no:cacheprovider --benchmark-only --benchmark-json "$OUT/pytest-bench.json" \
                   --benchmark-columns=min,median,max,rounds ;;
        large) step "${LIMIT_LARGE:-240}" large "$PY" -m ganrepro sweep --grid "$GRID" --device "$DEVICE" \
                   --frameworks torch --jobs "${LARGE_JOBS:-8}" --runs "$OUT/runs" --quiet
               (cd "$OUT" && find runs -name metrics.json -print0 | tar czf large-metrics.tar.gz --null -T -)
               pack ;;
        tests) step "${LIMIT_TESTS:-180}" tests "$PY" -m pytest -q -p no:cacheprovider "${xdist[@]}" \
                   tests/test_ladder_e_devices.py tests/test_static_step.py tests/test_image_devices.py \
                   tests/test_minibatch_layer.py tests/test_minibatch_triton.py tests/test_fused_step.py \
                   -k "cuda and not cpu_and_cuda_runs_agree" ;;
        probe) step "${LIMIT_PROBE:-30}" probe "$PY" benchmarks/probe_stack_invariance.py --device "$DEVICE" ;;
        fused) step "${LIMIT_FUSED:-240}" fused "$PY" benchmarks/probe_compiled_step.py --device "$DEVICE" \
                   --forms fused --stacks ${FUSED_STACKS:-1 65536} --fused-shapes ${FUSED_SHAPES:-default 8,8 1,4 16,4}
               if ! grep -q '"ran": "fused".*"step_us"' "$OUT/fused.log"; then
                   echo "== the fused step did not run: the parts after this one use the compiled step" \
                       | tee -a "$OUT/steps.log"
                   export GANREPRO_CUDA_FUSED=0
               fi ;;
        compiled) step "${LIMIT_COMPILED:-150}" compiled "$PY" benchmarks/probe_compiled_step.py --device "$DEVICE" \
                   --stacks ${PROBE_STACKS:-1 65536} ${PROBE_FLAGS:-}
               if ! grep -q '"ran": "compiled".*"step_us"' "$OUT/compiled.log"; then
                   echo "== the compiled step did not run: the parts after this one use the eager step" \
                       | tee -a "$OUT/steps.log"
                   export GANREPRO_CUDA_COMPILE=0
               fi ;;
        tiles) step "${LIMIT_TILES:-90}" tiles "$PY" benchmarks/probe_triton_tiles.py --device "$DEVICE" ;;
        rung-e) step "${LIMIT_RUNG_E:-330}" rung-e "$PY" -m pytest -v -p no:cacheprovider \
                   "${xdist_e[@]}" tests/test_ladder_e_devices.py -k cpu_and_cuda_runs_agree --durations=10 ;;
        *) echo "unknown part '$part'; allowed: fused, compiled, bench, pytest-bench, large, tests, probe, tiles, rung-e"; exit 2 ;;
    esac
done
exit "$status"
