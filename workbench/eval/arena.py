"""Blind arena: pairwise votes between two anonymous variants, and Bradley–Terry ratings.

A vote says which of two answers to one question was better: ``a``, ``b``, ``tie`` or
``both_bad``. Ratings come from the Bradley–Terry model, P(i beats j) = p_i / (p_i + p_j),
fitted by maximum likelihood over all votes with Hunter's MM iteration; a tie (and "both
bad", which is a tie between two poor answers) counts half a win for each side. A small
virtual tie between every pair (``PRIOR`` games) keeps strengths finite when a variant
never lost. Strengths are shown on the Elo scale (1000 + 400·log10 p, centred on the
variants' mean), with 95% intervals from a seeded bootstrap over the votes, per variant
and per language.

Votes live in the workbench SQLite file (table ``arena_votes``) with the language, the
region, both variants and both answers, masked like every stored chat text.
"""
from __future__ import annotations

import sqlite3
import time
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.config import connect_db, db_path
from workbench.errors import InputError
from workbench.domain.pii import mask_pii

VOTES = ("a", "b", "tie", "both_bad")
VOTE_LABELS = {"a": "A is better", "b": "B is better", "tie": "Tie", "both_bad": "Both are bad"}
PRIOR = 0.1
BOOTSTRAP = 1000
SEED = 0
ELO_SCALE = 400 / np.log(10)
SCHEMA = """
CREATE TABLE IF NOT EXISTS arena_votes (
    vote_id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    conversation_id TEXT,
    lang TEXT NOT NULL, region TEXT,
    model TEXT,                     -- base model name
    variant_a TEXT NOT NULL,        -- name@version or base, shown as "A"
    variant_b TEXT NOT NULL,        -- shown as "B"
    question TEXT NOT NULL,         -- masked
    answer_a TEXT NOT NULL,         -- masked
    answer_b TEXT NOT NULL,         -- masked
    vote TEXT NOT NULL CHECK (vote IN ('a', 'b', 'tie', 'both_bad'))
);
CREATE INDEX IF NOT EXISTS arena_votes_lang ON arena_votes(lang);
"""


@dataclass(frozen=True)
class Vote:
    """One arena vote, as the Chat tab hands it over (texts still unmasked)."""

    # Variants on side A and side B (name@version, or "base").
    variant_a: str
    variant_b: str
    # The customer question and the two answers.
    question: str
    answer_a: str
    answer_b: str
    # "a", "b", "tie" or "both_bad".
    vote: str
    # Customer language and store region.
    lang: str
    region: str | None = None
    # Base model name and the conversation the vote came from.
    model: str | None = None
    conversation_id: str | None = None


class ArenaStore:
    """The votes table; every call opens its own connection (UI threads, CLI)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or db_path()
        with closing(self._connect()) as db, db:
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return connect_db(self.path)

    def record(self, vote: Vote) -> str:
        """Store one vote (texts masked); refuses a bad vote before writing anything."""
        if vote.vote not in VOTES:
            raise InputError(f"A vote is one of {', '.join(VOTES)}, not {vote.vote!r}.")
        if not vote.variant_a or not vote.variant_b or vote.variant_a == vote.variant_b:
            raise InputError("An arena vote compares two different variants.")
        if not vote.question.strip():
            raise InputError("An arena vote needs the question both variants answered.")
        vote_id = uuid.uuid4().hex
        mask = lambda text: mask_pii(text, vote.region, vote.lang)  # noqa: E731
        row = (vote_id, time.time(), vote.conversation_id, vote.lang, vote.region, vote.model,
               vote.variant_a, vote.variant_b, mask(vote.question), mask(vote.answer_a),
               mask(vote.answer_b), vote.vote)
        with closing(self._connect()) as db, db:
            db.execute("INSERT INTO arena_votes VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", row)
        return vote_id

    def votes(self, lang: str | None = None) -> pd.DataFrame:
        query, args = "SELECT * FROM arena_votes", ()
        if lang:
            query, args = query + " WHERE lang = ?", (lang,)
        with closing(self._connect()) as db:
            return pd.read_sql_query(query + " ORDER BY created", db, params=args)


# ---- Bradley–Terry -------------------------------------------------------------------------
def outcome_scores(votes: pd.DataFrame) -> np.ndarray:
    """Side A's score per vote: 1 win, 0 loss, 0.5 tie or both bad."""
    return votes["vote"].map({"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5}).to_numpy(float)


def fit_bradley_terry(i: np.ndarray, j: np.ndarray, score: np.ndarray, k: int,
                      weights: np.ndarray | None = None, prior: float = PRIOR,
                      tol: float = 1e-10, max_iter: int = 10_000) -> np.ndarray:
    """Log-strengths (mean 0) of ``k`` players by maximum likelihood.

    Comparison ``c`` is player ``i[c]`` vs ``j[c]`` with ``score[c]`` points for ``i``.
    ``weights`` [R, C] fits R weighted copies at once (bootstrap resamples, as counts of each
    comparison); the result is then [R, k].
    """
    w = np.ones((1, len(i))) if weights is None else np.atleast_2d(weights).astype(float)
    r = w.shape[0]
    wins = np.zeros((r, k))
    games = np.zeros((r, k, k))
    np.add.at(wins.T, i, (w * score).T)
    np.add.at(wins.T, j, (w * (1 - score)).T)
    np.add.at(games.transpose(1, 2, 0), (i, j), w.T)
    games = games + games.transpose(0, 2, 1)
    off = 1 - np.eye(k)
    games += prior * off
    wins += prior / 2 * (k - 1)
    p = np.ones((r, k))
    for _ in range(max_iter):
        denom = (games / (p[:, :, None] + p[:, None, :])).sum(axis=2)
        new = wins / np.where(denom > 0, denom, 1.0)
        new = np.where(wins > 0, new, 1e-300)
        new /= np.exp(np.log(new).mean(axis=1, keepdims=True))
        done = np.max(np.abs(np.log(new) - np.log(p))) < tol
        p = new
        if done:
            break
    theta = np.log(p)
    theta -= theta.mean(axis=1, keepdims=True)
    return theta[0] if weights is None else theta


@dataclass(frozen=True)
class Rating:
    """One leaderboard row."""

    variant: str
    # Elo-scale rating and its 95% bootstrap interval.
    rating: float
    low: float
    high: float
    # Votes the variant took part in, and how they went.
    votes: int
    wins: int
    losses: int
    ties: int
    both_bad: int


def ratings(votes: pd.DataFrame, b: int = BOOTSTRAP, seed: int = SEED,
            prior: float = PRIOR) -> list[Rating]:
    """Bradley–Terry ratings of every variant in ``votes``, best first."""
    if votes.empty:
        return []
    names = sorted(set(votes["variant_a"]) | set(votes["variant_b"]))
    index = {n: k for k, n in enumerate(names)}
    i = votes["variant_a"].map(index).to_numpy()
    j = votes["variant_b"].map(index).to_numpy()
    score = outcome_scores(votes)
    theta = fit_bradley_terry(i, j, score, len(names), prior=prior)
    rng = np.random.default_rng(seed)
    counts = np.stack([np.bincount(rng.integers(0, len(votes), len(votes)), minlength=len(votes))
                       for _ in range(b)])           # [b, votes]: how often each vote is drawn
    boot = fit_bradley_terry(i, j, score, len(names), weights=counts, prior=prior)
    low, high = np.percentile(boot, [2.5, 97.5], axis=0)
    out = []
    for n, k in index.items():
        side_a, side_b = votes["variant_a"] == n, votes["variant_b"] == n
        mine = votes[side_a | side_b]
        won = ((side_a & (votes["vote"] == "a")) | (side_b & (votes["vote"] == "b"))).sum()
        lost = ((side_a & (votes["vote"] == "b")) | (side_b & (votes["vote"] == "a"))).sum()
        out.append(Rating(n, _elo(theta[k]), _elo(low[k]), _elo(high[k]), len(mine), int(won),
                          int(lost), int((mine["vote"] == "tie").sum()),
                          int((mine["vote"] == "both_bad").sum())))
    return sorted(out, key=lambda r: -r.rating)


def _elo(theta: float) -> float:
    return float(1000 + ELO_SCALE * theta)


def leaderboard(votes: pd.DataFrame, by_lang: bool = False, b: int = BOOTSTRAP,
                seed: int = SEED) -> pd.DataFrame:
    """The leaderboard as a table: all votes, or one block per language."""
    cols = ["variant", "rating", "low", "high", "votes", "wins", "losses", "ties", "both_bad"]
    if votes.empty:
        return pd.DataFrame(columns=(["lang"] if by_lang else []) + cols)
    groups = votes.groupby("lang", sort=True) if by_lang else [(None, votes)]
    rows = []
    for lang, group in groups:
        for r in ratings(group, b, seed):
            rows.append(({"lang": lang} if by_lang else {}) | {c: getattr(r, c) for c in cols})
    return pd.DataFrame(rows)
