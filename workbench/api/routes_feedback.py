"""``POST /v1/feedback``: a customer's outcome for an answer the API (or the page) served.

The body names the answer by the id its response carried (``chatcmpl-…``, ``cmpl-…``) and
gives at least one outcome: a 1–5 ``rating``, ``resolved`` ("did that solve it"), or
``escalated`` (the conversation was handed to a human agent), with an optional ``comment``.
A second feedback for the same id replaces the first (the customer's latest answer counts);
every change is kept in the feedback audit. The inference key guards it, as completions.

Status codes: 200 with the stored feedback; 400 for a bad value or no outcome; 401 without
the key; 404 for an unknown id; 503 with ``Retry-After`` while the database is unavailable
(nothing is written).
"""
from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool

from workbench.api.auth import InferenceRoute
from workbench.api.errors import RETRY_AFTER_S, APIError
from workbench.api.models import ErrorResponse, _Body
from workbench.errors import StoreError
from workbench.service.workbench import Workbench
from workbench.store.chatlog import Feedback
from workbench.store.db import StoreUnavailable

router = APIRouter(route_class=InferenceRoute)
ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 404, 503)}


class FeedbackRequest(_Body):
    # The schema says what _an_outcome checks: at least one outcome that is not null.
    model_config = ConfigDict(**_Body.model_config, json_schema_extra={"anyOf": [
        {"required": [k], "properties": {k: {"not": {"type": "null"}}}}
        for k in ("rating", "resolved", "escalated")]})
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$",
                    description="The id of the answer: a response's `id` (chatcmpl-…, cmpl-…).")
    rating: int | None = Field(None, ge=1, le=5, description="The customer's rating, 1 to 5.")
    resolved: bool | None = Field(None, description="Did the answer solve the customer's problem?")
    escalated: bool | None = Field(None, description="Was the conversation handed to a human agent?")
    comment: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _an_outcome(self) -> "FeedbackRequest":
        if self.rating is None and self.resolved is None and self.escalated is None:
            raise ValueError("give at least one of rating, resolved or escalated")
        return self


class FeedbackRecord(BaseModel):
    id: str
    object: str = "feedback"
    rating: int | None
    resolved: bool | None
    escalated: bool | None
    comment: str | None
    # The variant that served the answer (name@version or base), and its route and arm.
    model: str
    route: str | None
    arm: str | None
    updated: float | None


@router.post("/v1/feedback", response_model=FeedbackRecord, responses=ERRORS)
async def post_feedback(body: FeedbackRequest, request: Request) -> FeedbackRecord:
    wb: Workbench = request.app.state.wb
    feedback = Feedback(body.rating, body.resolved, body.escalated, body.comment)
    try:
        row = await run_in_threadpool(wb.give_feedback, body.id, feedback, "api")
    except StoreUnavailable as exc:
        raise APIError(503, exc.message, headers={"Retry-After": str(RETRY_AFTER_S)}) from exc
    except StoreError as exc:
        raise APIError(404, exc.message, "id") from exc
    flag = (lambda v: None if v is None else bool(v))
    return FeedbackRecord(id=row["turn_id"], rating=row["rating"], resolved=flag(row["resolved"]),
                          escalated=flag(row["escalated"]), comment=row["comment"], model=row["variant"],
                          route=row["route"], arm=row["arm"], updated=row.get("feedback_at"))
