#!/usr/bin/env bash
# The Xception benchmark table on a GPU, with Keras on JAX (jit) and on PyTorch,
# float32 and bfloat16 (mixed: the model in bfloat16, attributions summed in float32);
# then explain_dataset against the per-image loop and the floor on MobileNetV2
# 224x224 (random weights) over 1,024 images, on JAX and on PyTorch
# (benchmarks/dataset.py: interleaved rounds, wall and CPU time, the tuner's batches).
#
# For an offline machine that has CUDA, PyTorch and JAX (CUDA builds) but no
# TensorFlow and no internet. The package itself needs no TensorFlow on these
# paths; the script checks that before measuring.
#
# Beforehand, on a machine with internet, fetch the few light wheels (Keras and
# the package's small dependencies; pip pulls Keras' own: absl-py, h5py,
# ml-dtypes, namex, optree, rich, ...) for the GPU machine's Python and
# platform, and copy the folder next to this repository:
#
#   pip download --dest wheels --only-binary=:all: \
#       --python-version 3.11 --platform manylinux2014_x86_64 \
#       "keras>=3.0" "scipy>=1.10" "numpy>=1.24" "pillow>=10.0" \
#       "pandas>=2.0" "pyarrow>=14" "zarr>=3.0" "fsspec>=2023.1" "tqdm>=4.66"
#
# Usage: benchmarks/gpu.sh [--cpu] [--python PYTHON] [WHEEL_DIR]
#   WHEEL_DIR        folder of wheels (default: ./wheels)
#   --python PYTHON  use this interpreter as it is, no virtual environment
#                    (default: .venv-gpu, made with the system's torch and jax)
#   --cpu            the same steps on the CPU at a small size (Xception 71x71,
#                    one baseline, 5 points, one repeat; MobileNetV2 64x64 over
#                    4 images, one round): a dry run that proves the script
#                    works in minutes (bfloat16 convolutions are slow on most
#                    CPUs, so the numbers mean nothing)
# The table is printed and written to benchmarks/gpu-results.md (--cpu: to
# ${TMPDIR:-/tmp}/ig-widget-gpu-dry-run.md).
set -euo pipefail
cd "$(dirname "$0")/.."

cpu=0
python=""
wheels=wheels
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) cpu=1 ;;
    --python) python=$2; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//; $d'; exit 0 ;;
    *) wheels=$1 ;;
  esac
  shift
done

if [ -z "$python" ]; then
  # --system-site-packages: the machine's CUDA builds of torch and jax stay visible.
  [ -x .venv-gpu/bin/python ] || python3 -m venv --system-site-packages .venv-gpu
  python=.venv-gpu/bin/python
fi

missing=$("$python" -c '
import importlib.util
modules = ("keras", "scipy", "numpy", "PIL", "pandas", "pyarrow", "zarr", "fsspec", "tqdm")
print(" ".join(m for m in modules if not importlib.util.find_spec(m)))
')
if [ -n "$missing" ]; then
  echo "installing from $wheels: keras, scipy, numpy, pillow and the dataset extras (missing: $missing)"
  "$python" -m pip install --no-index --find-links "$wheels" "keras>=3.0" "scipy>=1.10" \
    "numpy>=1.24" "pillow>=10.0" "pandas>=2.0" "pyarrow>=14" "zarr>=3.0" "fsspec>=2023.1" \
    "tqdm>=4.66"
fi
"$python" -c 'import torch, jax' || { echo "gpu.sh: needs PyTorch and JAX installed" >&2; exit 1; }

# Neither the package nor its JAX/PyTorch backends may load TensorFlow.
for backend in jax torch; do
  KERAS_BACKEND=$backend "$python" -c "
import sys, keras, ig_widget, ig_widget.backends.$backend
assert 'tensorflow' not in sys.modules, 'importing ig_widget loaded tensorflow'
print('ig_widget with Keras on', keras.backend.backend(), 'loads no TensorFlow')"
done

output=benchmarks/gpu-results.md
options=(--output "$output")
dataset=(--model mobilenet_v2 --images 1024 --rounds 2)
if [ "$cpu" = 1 ]; then
  output="${TMPDIR:-/tmp}/ig-widget-gpu-dry-run.md"
  options=(--cpu --size 71 --steps 4 --repeats 1 --baselines 1 --output "$output")
  dataset=(--model mobilenet_v2 --size 64 --images 4 --rounds 1)
else
  command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  "$python" -c 'import torch, jax; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "| jax", jax.__version__, jax.devices())'
fi
"$python" -m benchmarks.run --backends jax torch --precisions float32 bfloat16 \
  --models xception --sections speed "${options[@]}"

# explain_dataset against the loop and the floor: one ROW of JSON per backend, appended.
for backend in jax torch; do
  echo "explain_dataset, Keras on $backend: ${dataset[*]}"
  row=$(KERAS_BACKEND=$backend "$python" -m benchmarks.dataset speed "${dataset[@]}" | grep '^ROW ')
  echo "$row"
  printf '\nexplain_dataset, Keras on %s (%s):\n\n    %s\n' "$backend" "${dataset[*]}" "$row" >> "$output"
done
