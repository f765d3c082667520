"""Keep third-party start-up chatter out of the app's and CLI's output.

peft imports gptqmodel (which prints a banner) and torchao (which logs missing CUDA
kernels on a CPU machine) the first time a LoRA layer is built; neither message is
actionable for a workbench user. Importing gptqmodel once here, muted, keeps later
imports silent. Real errors still surface: only known noise is filtered.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings


def quiet_imports() -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name in ("torch.utils._pytree", "torchao", "torchao.kernel"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*")
    warnings.filterwarnings("ignore", message=r".*torch_dtype.*deprecated.*")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            import gptqmodel  # noqa: F401
        except Exception:  # AWQ is optional; its absence is reported where it is needed
            pass
    _line_based_progress()


def _line_based_progress() -> None:
    """transformers draws a "Loading weights" bar with carriage returns; in a log file that is
    one endless line, so off it goes when stderr is not a terminal (our own progress writes
    lines there, see ``workbench.console.progress``)."""
    import sys

    from workbench.console.progress import is_terminal

    if not is_terminal(sys.stderr):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
