#!/usr/bin/env bash
# Gather what a GPU machine without network needs for tools/gpu_study.py (hyperlr.lab.lease)
# into one folder (default .gpu_bundle, ignored by git), and check that it and the working tree
# fit a lease's carry limit (64 MiB together):
#
#   wheels/         wheels the GPU image may lack, for CPython 3.12 on x86-64 Linux (GPU_PYTHON
#                   for another version): optuna and schedulefree (hyperlr.lab requires them at
#                   import), optuna's alembic, sqlalchemy, colorlog, mako, greenlet, and a recent
#                   filelock (results.py falls back to FileLock without SoftFileLease anyway)
#   fashion-mnist/  the four Fashion-MNIST idx files, from /usr/share/datasets/fashion-mnist
#                   (Debian's dataset-fashion-mnist; downloaded with apt-get where absent)
#
# On the GPU machine (run's carry: [".gpu_bundle"]):
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site \
#     .gpu_bundle/wheels/*.whl
#   export PYTHONPATH=$PWD:/tmp/site HYPERLR_DATA_DIR=$PWD/.gpu_bundle/fashion-mnist
#   python3 tools/gpu_study.py --deadline 480 --out $OUT
set -euo pipefail
bundle=${1:-.gpu_bundle}
python_version=${GPU_PYTHON:-3.12}
pip_python=${PIP_PYTHON:-python3}
limit_mib=64
wheels=(optuna alembic sqlalchemy colorlog mako greenlet schedulefree filelock)
mkdir -p "$bundle/wheels" "$bundle/fashion-mnist"

platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 \
           manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$tag")
done
"$pip_python" -m pip download --quiet --no-deps --only-binary=:all: \
  --python-version "$python_version" --implementation cp "${platforms[@]}" \
  -d "$bundle/wheels" "${wheels[@]}"

debian=/usr/share/datasets/fashion-mnist
if ! ls "$bundle"/fashion-mnist/*-ubyte.gz >/dev/null 2>&1; then
  if ls "$debian"/*-ubyte.gz >/dev/null 2>&1; then
    cp "$debian"/*-ubyte.gz "$bundle/fashion-mnist/"
  else
    scratch=$(mktemp -d)
    (cd "$scratch" && apt-get download dataset-fashion-mnist >/dev/null)
    dpkg -x "$scratch"/dataset-fashion-mnist_*.deb "$scratch/root"
    find "$scratch/root" -name '*-ubyte.gz' -exec cp {} "$bundle/fashion-mnist/" \;
    rm -rf "$scratch"
  fi
fi
count=$(ls "$bundle"/fashion-mnist/*-ubyte.gz | wc -l)
[ "$count" -eq 4 ] || { echo "expected 4 Fashion-MNIST files, found $count" >&2; exit 1; }

# What travels: tracked and untracked-not-ignored files, plus the carried bundle.
tree_bytes=$(git ls-files -z -co --exclude-standard | xargs -0 -r stat -c %s 2>/dev/null \
  | awk '{s += $1} END {print s + 0}')
bundle_bytes=$(find "$bundle" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
total=$((tree_bytes + bundle_bytes))
awk -v t="$tree_bytes" -v b="$bundle_bytes" -v s="$total" -v l="$limit_mib" 'BEGIN {
  printf "working tree %.1f MiB + bundle %.1f MiB = %.1f MiB of the %d MiB carry limit\n",
         t / 2^20, b / 2^20, s / 2^20, l }'
[ "$total" -le $((limit_mib * 1024 * 1024)) ] || { echo "over the carry limit" >&2; exit 1; }
