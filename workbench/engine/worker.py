"""The engine's worker loop: schedule → run → update, once per step, on one thread.

schedule: finish cancelled requests, let interactive requests take batch rows' slots when
all are full (preemption by recompute, as vLLM does: the row's keys/values are dropped and
rebuilt from its prompt and output when it is admitted again), admit waiting requests into
free slots, best priority first, as a prefill job.
run: one prefill chunk of the best-priority job (a long prompt takes several steps, each
followed by a decode step of the running rows, so it never stalls them for long), then one
decode step of every running row. A job whose last chunk ran samples its rows' first tokens
and joins the running batch.
update: each row's token is appended and streamed; a row that hits EOS, its token limit, a
stop string, the end of its grammar or a cancel leaves at once, freeing its slot.

A step that raises fails the rows of that step only. If the loop itself dies, every request
in flight or waiting fails at once, and the engine refuses new ones. Adapter operations run
between steps; one that changes an adapter waits until no admitted row uses it (so a row
never sees its weights change) while that adapter's new requests wait; one withdrawn by a
caller that timed out never runs.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import torch

from workbench.config import EngineConfig
from workbench.engine.request import Priority, Request, RequestStatus
from workbench.engine.runner import Batch, ModelRunner, PrefillJob, Row
from workbench.engine.sampling import sample_rows
from workbench.engine.scheduler import KVBudget, Scheduler, choose_victims, footprint
from workbench.engine.stats import EngineStats

log = logging.getLogger(__name__)


@dataclass
class AdapterOp:
    """Work for the worker thread, run between steps."""

    fn: Callable[[], object]
    future: Future
    # Adapter whose admitted rows must leave first (None: run at the next step).
    adapter: str | None = None


class Worker:
    """The loop and the state only it touches: the running batch, prefill jobs, parked rows."""

    def __init__(self, runner: ModelRunner, scheduler: Scheduler, config: EngineConfig,
                 admit_lock: threading.Lock, on_end: Callable[[Request], None]) -> None:
        self.runner, self.scheduler, self.config = runner, scheduler, config
        self.budget = KVBudget(runner.kv_bytes_per_token(), config.kv_cache_mb * 2**20)
        self.stats = EngineStats()
        self.batch: Batch | None = None
        self.jobs: list[PrefillJob] = []
        self.parked: dict[str, Row] = {}  # preempted rows by request id, waiting to come back
        self.ops: list[AdapterOp] = []
        self.ops_lock = threading.Lock()
        self.stop = threading.Event()
        self.dead: str | None = None  # why the loop died, once it has
        self.active: tuple[Request, ...] = ()  # admitted requests, readable from any thread
        # Held while requests move from the queue to ``active``, so readers see them in one.
        self.state_lock = threading.Lock()
        self._admit = admit_lock
        self._on_end = on_end

    # ---- the loop ------------------------------------------------------------------------
    def run(self) -> None:
        # Subnormal floats take a slow path in the CPU's arithmetic: LoRA products of small
        # weights made a mixed-adapter decode step 15x slower (profiled). Flushing them to
        # zero is per thread, so it is set here, on the thread that runs the model.
        torch.set_flush_denormal(True)
        try:
            # Logits, masks and caches are inference tensors; samplers edit logits in place.
            with torch.inference_mode():
                while not self.stop.is_set():
                    self.iteration()
        except BaseException as exc:  # the last line of defence: nobody may hang on us
            log.exception("engine worker died")
            self.die(f"The engine stopped after an internal error ({type(exc).__name__}: {exc}); "
                     "restart it to serve again.")
            return
        self.fail_admitted("The engine shut down before this request finished.")

    def iteration(self) -> None:
        self.run_ops()
        self.schedule()
        if self.batch is None and not self.jobs:
            self.publish()
            self.scheduler.wait(0.05)
            return
        self.prefill_once()
        self.decode_once()
        self.publish()

    def holding(self) -> list[Row]:
        """Rows holding keys/values: decoding, then prefilling."""
        return [*(self.batch.rows if self.batch else []), *(r for j in self.jobs for r in j.rows)]

    def publish(self) -> None:
        self.active = tuple(r.request for r in (*self.holding(), *self.parked.values()))

    # ---- schedule ------------------------------------------------------------------------
    def schedule(self) -> None:
        for req in self.scheduler.pop_cancelled():
            self.finish(req, "cancelled")
        self._drop_cancelled_rows()
        held = self._held()

        def admissible(r: Request) -> bool:
            return r.adapter_key not in held or r.request_id in self.parked

        if self.batch is None and not self.jobs:
            self.scheduler.wait_to_fill(self.config.max_batch_size, admissible)
        free = self.config.max_batch_size - len(self.holding())
        if self.config.preempt_batch:
            free += self._preempt_for_interactive(free, admissible)
        if free <= 0:
            return
        lengths = [footprint(r.request) for r in self.holding()]

        def fits(r: Request) -> bool:
            if not self.budget.fits([*lengths, footprint(r)]):
                return False
            lengths.append(footprint(r))
            return True

        with self.state_lock:
            taken = self.scheduler.take(free, admissible, fits)
            self.active = (*self.active, *taken)
        for prio in sorted({r.priority for r in taken}):
            self._admit_group([r for r in taken if r.priority == prio])

    def _held(self) -> set[str]:
        with self.ops_lock:
            return {op.adapter for op in self.ops if op.adapter and not op.future.cancelled()}

    def _admit_group(self, reqs: list[Request]) -> None:
        rows: list[Row] = []
        now = time.monotonic()
        for req in reqs:
            row = self.parked.pop(req.request_id, None)
            if row is None:
                try:
                    row = self.runner.new_row(req)
                except Exception as exc:  # a bad grammar fails its request only
                    self.fail(req, f"Could not compile the output constraint: {exc}")
                    continue
                req.metrics.queue_ms = (now - req.arrival) * 1000.0
            req.status = RequestStatus.RUNNING
            rows.append(row)
        if not rows:
            return
        try:
            self.jobs.append(self.runner.start_prefill(rows))
        except Exception as exc:
            self._step_failed(rows, exc)

    def _preempt_for_interactive(self, free: int, admissible: Callable[[Request], bool]) -> int:
        """Free slots (and key/value memory for the first of them) for waiting interactive
        requests by parking the newest batch rows."""
        waiting = self.scheduler.waiting_of(Priority.INTERACTIVE, admissible)
        if not waiting or self.batch is None:
            return 0
        victims = choose_victims(free, waiting, [r.request for r in self.batch.rows],
                                 [r.request for j in self.jobs for r in j.rows], self.budget)
        if not victims:
            return 0
        rows = [self.batch.rows[i] for i in victims]
        self._keep([i for i in range(len(self.batch)) if i not in victims])
        for row in rows:
            req = row.request
            req.status = RequestStatus.WAITING
            req.metrics.preemptions += 1
            self.parked[req.request_id] = row
            self.scheduler.requeue(req)
        self.stats.preemptions += len(rows)
        return len(rows)

    def _drop_cancelled_rows(self) -> None:
        if self.batch is not None:
            gone = [i for i, r in enumerate(self.batch.rows) if r.request.cancelled]
            for i in gone:
                self.finish_row(self.batch.rows[i], "cancelled")
            if gone:
                self._keep([i for i in range(len(self.batch)) if i not in gone])
        for job in [j for j in self.jobs if all(r.request.cancelled for r in j.rows)]:
            self.jobs.remove(job)
            for row in job.rows:
                self.finish_row(row, "cancelled")

    def _keep(self, index: list[int]) -> None:
        if not index:
            self.batch = None
            self.runner.drop_batch()
        elif self.batch is not None:
            self.batch.keep(index)

    # ---- run + update ------------------------------------------------------------------
    def prefill_once(self) -> None:
        if not self.jobs:
            return
        job = min(self.jobs, key=lambda j: min(r.request.priority for r in j.rows))
        try:
            logits = self.runner.prefill_chunk(job, self._chunk_tokens(job))
            self.stats.prefill_chunks += 1
            if logits is None:
                return
            self.jobs.remove(job)
            tokens = sample_rows(logits, [r.sampler for r in job.rows])
        except Exception as exc:
            if job in self.jobs:
                self.jobs.remove(job)
            self._step_failed(job.rows, exc)
            return
        now = time.monotonic()
        for row in job.rows:
            row.max_batch = max(row.max_batch, len(job.rows))
        keep = [b for b, (row, tok) in enumerate(zip(job.rows, tokens))
                if self._advance_safely(row, tok, now)]
        if keep:
            self.batch = self.runner.join(self.batch, job, tokens, keep)

    def _chunk_tokens(self, job: PrefillJob) -> int:
        """Batch work prefills in small chunks while interactive rows decode next to it, and
        any work in large ones while nothing decodes."""
        if self.batch is None:
            return max(self.config.idle_prefill_chunk_tokens, self.config.prefill_chunk_tokens)
        batch_job = all(r.request.priority > Priority.INTERACTIVE for r in job.rows)
        chatting = any(r.request.priority is Priority.INTERACTIVE for r in self.batch.rows)
        return self.config.batch_chunk_tokens if batch_job and chatting else self.config.prefill_chunk_tokens

    def decode_once(self) -> None:
        batch = self.batch
        if batch is None:
            return
        try:
            logits = self.runner.decode(batch)
            tokens = sample_rows(logits, [r.sampler for r in batch.rows])
        except Exception as exc:
            self.batch = None
            self.runner.drop_batch()
            self._step_failed(batch.rows, exc)
            return
        n, now = len(batch), time.monotonic()
        self.stats.steps += 1
        self.stats.decode_rows += n
        self.stats.last_batch_size = n
        batch.next_ids = tokens
        keep = []
        for i, (row, tok) in enumerate(zip(batch.rows, tokens)):
            row.max_batch = max(row.max_batch, n)
            if self._advance_safely(row, tok, now):
                keep.append(i)
        self._keep(keep)

    def _advance_safely(self, row: Row, tok: int, now: float) -> bool:
        """``advance``, but an error in one row's update (its grammar, its text) fails that row only."""
        try:
            return self.advance(row, tok, now)
        except Exception as exc:
            log.exception("row update failed")
            self.fail(row.request, f"Generation failed: {exc}")
            return False

    def advance(self, row: Row, tok: int, now: float) -> bool:
        """Append one sampled token to its row; False once the row has ended."""
        req, m = row.request, row.request.metrics
        if req.cancelled:
            self.finish_row(row, "cancelled")
            return False
        if m.ttft_ms is None:
            m.ttft_ms = (now - req.arrival) * 1000.0
            m.ttft_steps = self.stats.steps - req.arrival_step
        if tok in self.runner.eos_ids and not req.sampling.ignore_eos:
            self.finish_row(row, "eos")
            return False
        row.sampler.accept(tok)
        req.output_token_ids.append(tok)
        m.token_times.append(now)
        self._emit(row, row.text.push(tok))
        constraint = row.sampler.constraint
        if row.text.stopped or (constraint is not None and constraint.is_finished()):
            self.finish_row(row, "stop")
        elif len(req.output_token_ids) >= req.max_new_tokens:
            self.finish_row(row, "length")
        else:
            return True
        return False

    @staticmethod
    def _emit(row: Row, delta: str) -> None:
        if delta:
            row.request.output_text = row.text.text[:row.text.sent]
            row.request.stream.put(delta)

    def _step_failed(self, rows: list[Row], exc: Exception) -> None:
        log.exception("engine step failed", exc_info=exc)
        self.stats.failed_steps += 1
        for row in rows:
            self.fail(row.request, f"Generation failed: {exc}")

    # ---- ends ----------------------------------------------------------------------------
    def finish_row(self, row: Row, reason: str) -> None:
        self._emit(row, row.text.flush())
        row.request.output_text = row.text.text
        row.request.metrics.batch_size = row.max_batch
        self.finish(row.request, reason)

    def fail(self, req: Request, message: str) -> None:
        req.error = message
        self.finish(req, "error")

    def finish(self, req: Request, reason: str) -> None:
        """Mark ``req`` done with ``reason``, fill in its metrics, close its stream."""
        if req.done_event.is_set():
            return
        now, m = time.monotonic(), req.metrics
        req.status = {"cancelled": RequestStatus.CANCELLED,
                      "error": RequestStatus.FAILED}.get(reason, RequestStatus.FINISHED)
        req.finish_reason = reason
        m.completion_tokens = len(req.output_token_ids)
        m.total_ms = (now - req.arrival) * 1000.0
        if m.queue_ms is None:
            m.queue_ms = m.total_ms
        if m.ttft_ms is not None and m.completion_tokens > 1:
            m.tpot_ms = (m.total_ms - m.ttft_ms) / (m.completion_tokens - 1)
        self.parked.pop(req.request_id, None)
        s = self.stats
        s.completed, s.tokens = s.completed + 1, s.tokens + m.completion_tokens
        s.prompt_tokens, s.cached_tokens = s.prompt_tokens + m.prompt_tokens, s.cached_tokens + m.cached_tokens
        req.stream.put(None)
        req.done_event.set()
        self._on_end(req)

    def fail_admitted(self, message: str) -> None:
        rows = [*self.holding(), *self.parked.values()]
        self.batch, self.jobs = None, []
        self.runner.drop_batch()
        for row in rows:
            self.fail(row.request, message)
        self.publish()

    def die(self, message: str) -> None:
        """The loop is gone: fail everything admitted, waiting or queued as an operation."""
        with self._admit:
            self.dead = message
            waiting = self.scheduler.drain()
        self.fail_admitted(message)
        for req in waiting:
            self.fail(req, message)
        with self.ops_lock:
            ops, self.ops = self.ops, []
        for op in ops:
            if op.future.set_running_or_notify_cancel():
                op.future.set_exception(RuntimeError(message))

    # ---- adapter operations -----------------------------------------------------------
    def run_ops(self) -> None:
        with self.ops_lock:
            self.ops = [op for op in self.ops if not op.future.cancelled()]
            pending = list(self.ops)
        busy = {r.adapter_key for r in self.active}
        for op in pending:
            if op.adapter is not None and op.adapter in busy:
                continue  # its rows finish first; its waiting requests are held meanwhile
            with self.ops_lock:
                self.ops.remove(op)
            if not op.future.set_running_or_notify_cancel():
                continue  # withdrawn by a caller that gave up waiting
            try:
                op.future.set_result(op.fn())
            except BaseException as exc:  # handed to the caller, never kills the worker
                op.future.set_exception(exc)
