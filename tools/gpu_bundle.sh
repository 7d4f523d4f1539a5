#!/usr/bin/env bash
# Gather what a GPU machine without network needs to run tools/gpu_study.py, into one folder
# to copy there (default: .gpu_bundle, ignored by git):
#
#   wheels/         Python wheels the usual PyTorch GPU images lack: optuna and its dependencies
#                   (alembic, sqlalchemy, colorlog, mako, greenlet) and schedulefree, for
#                   CPython 3.12 on x86-64 Linux (set GPU_PYTHON to another version if needed)
#   fashion-mnist/  the four Fashion-MNIST idx files, from Debian's dataset-fashion-mnist
#
# On the GPU machine:
#   python3 -m pip install --no-index --no-deps --target /tmp/site .gpu_bundle/wheels/*.whl
#   export PYTHONPATH=$PWD:/tmp/site HYPERLR_DATA_DIR=$PWD/.gpu_bundle/fashion-mnist
#   python3 tools/gpu_study.py --study image --minutes 25
#
# Needs pip and Debian's apt-get (no root: apt-get download runs as any user).
set -euo pipefail
bundle=${1:-.gpu_bundle}
python_version=${GPU_PYTHON:-3.12}
wheels=(optuna alembic sqlalchemy colorlog mako greenlet schedulefree)
mkdir -p "$bundle/wheels" "$bundle/fashion-mnist"

platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 \
           manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$tag")
done
python3 -m pip download --quiet --no-deps --only-binary=:all: \
  --python-version "$python_version" --implementation cp "${platforms[@]}" \
  -d "$bundle/wheels" "${wheels[@]}"

if ! ls "$bundle"/fashion-mnist/*.gz >/dev/null 2>&1; then
  scratch=$(mktemp -d)
  (cd "$scratch" && apt-get download dataset-fashion-mnist >/dev/null)
  dpkg -x "$scratch"/dataset-fashion-mnist_*.deb "$scratch/root"
  find "$scratch/root" -name '*-ubyte.gz' -exec cp {} "$bundle/fashion-mnist/" \;
  rm -rf "$scratch"
fi
count=$(ls "$bundle"/fashion-mnist/*-ubyte.gz | wc -l)
[ "$count" -eq 4 ] || { echo "expected 4 Fashion-MNIST files, found $count" >&2; exit 1; }
du -sh "$bundle"/wheels "$bundle"/fashion-mnist
