"""The decoding modes of a run: free, constrained, or both.

A suite whose ``suite.yaml`` has ``structured_output`` (see ``options``) can be decoded under
that grammar; a run with decoding ``constrained`` (or ``both``) evaluates it so, reported as
its own suite ``<name>:constrained`` next to the free one.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from workbench.engine.request import SamplingParams
from workbench.errors import SuiteError, UnknownNameError
from workbench.eval.suite import Suite

DECODINGS = ("free", "constrained", "both")
CONSTRAINED_SUFFIX = ":constrained"


def constrained_copy(suite: Suite) -> Suite:
    """The suite decoded under its grammar, named ``<name>:constrained``."""
    if suite.options.structured is None:
        raise SuiteError(f"Suite '{suite.name}' has no structured_output to constrain decoding with.")
    return dataclasses.replace(suite, name=suite.name + CONSTRAINED_SUFFIX,
                               options=dataclasses.replace(suite.options, constrained=True))


def with_decoding(suites: Sequence[Suite], decoding: str) -> list[Suite]:
    """The suites a run covers for ``decoding``: free, constrained (where a suite has a
    grammar; others stay free), or both (each constrained copy right after its suite)."""
    if decoding not in DECODINGS:
        raise UnknownNameError("decoding", decoding, DECODINGS)
    out: list[Suite] = []
    for s in suites:
        has = s.options.structured is not None
        if decoding != "constrained" or not has:
            out.append(s)
        if decoding != "free" and has:
            out.append(constrained_copy(s))
    return out


def as_recorded(suite: Suite, name: str) -> Suite:
    """The suite as a run recorded it under ``name`` (its constrained copy, or itself)."""
    return constrained_copy(suite) if name == suite.name + CONSTRAINED_SUFFIX else suite


def sampling_for(suite: Suite) -> SamplingParams:
    """Greedy decoding, under the suite's grammar when this copy is constrained."""
    opts = suite.options
    return SamplingParams(structured=opts.structured if opts.constrained else None)
