#!/usr/bin/env bash
# On a GPU machine (one H100, 16 cores; torch with CUDA, e3nn, cmake, ninja, pybind11 installed):
# builds equiforce's op library and _C with the CUDA kernels, runs tests/gpu (CUDA against the CPU
# ops and e3nn, the model, a CUDA graph, DLPack), then the GPU benchmark. Writes device.txt,
# summary.txt, build.log, tests.log, bench.log and gpu.json under $OUT (default
# benchmarks/results/gpu). Meant to finish within 8 minutes.
#   bash tests/gpu/run_all.sh                 # TORCH_CUDA_ARCH_LIST defaults to this GPU's
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT="${OUT:-benchmarks/results/gpu}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then  # packages carried as wheels (the device tool's README)
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
if [ -z "${TORCH_CUDA_ARCH_LIST:-}" ]; then
  TORCH_CUDA_ARCH_LIST="$("$PY" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')"
  export TORCH_CUDA_ARCH_LIST
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/device.txt"

start=$(date +%s)
{
  cmake -S . -B build/gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DPython_EXECUTABLE="$(command -v "$PY")" \
    -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" -DEQUIFORCE_CUDA=ON -DEQUIFORCE_LAMMPS=OFF \
    -DEQUIFORCE_OPENMM=OFF -DEQUIFORCE_NATIVE_ARCH=OFF &&
  cmake --build build/gpu -j "$(nproc)"
} > "$OUT/build.log" 2>&1
status=$?
echo "[run_all] build: exit $status after $(( $(date +%s) - start )) s" | tee -a "$OUT/summary.txt"
if [ $status -ne 0 ]; then tail -40 "$OUT/build.log"; exit $status; fi
mkdir -p python/equiforce/lib
cp build/gpu/libequiforce_ops.so build/gpu/libequiforce_runtime.so python/equiforce/lib/
cp build/gpu/_C*.so python/equiforce/
export PYTHONPATH="$PWD/python:$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c "import equiforce._C as C, equiforce.ops; print('[run_all] equiforce', C.build_info())" | tee -a "$OUT/summary.txt"

start=$(date +%s)
timeout 300 "$PY" -m pytest -q -p no:cacheprovider tests/gpu \
  > "$OUT/tests.log" 2>&1
tests=$?
echo "[run_all] tests: exit $tests after $(( $(date +%s) - start )) s: $(tail -1 "$OUT/tests.log")" | tee -a "$OUT/summary.txt"

start=$(date +%s)
timeout 240 "$PY" benchmarks/gpu.py --out "$OUT/gpu.json" > "$OUT/bench.log" 2>&1
bench=$?
echo "[run_all] benchmark: exit $bench after $(( $(date +%s) - start )) s" | tee -a "$OUT/summary.txt"
tail -8 "$OUT/bench.log"
exit $(( tests != 0 ? tests : bench ))
