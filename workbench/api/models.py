"""Typed request and response bodies of the OpenAI- and vLLM-compatible API.

Field names, defaults and shapes follow the OpenAI API (and vLLM's extras: ``ignore_eos``,
``repetition_penalty``, ``structured_outputs``), so existing clients work unchanged. Unknown
fields are ignored, as vLLM does; fields this server cannot honour (``n > 1``, log-probs)
are refused with a 400 instead of being silently dropped.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from workbench.domain.langs import LANGUAGES, REGIONS
from workbench.domain.policy import load_policies
from workbench.errors import unknown_name_message

MAX_STOP = 4
StopString = Annotated[str, Field(min_length=1)]
# Adapter names and versions as the registry accepts them (registry.SAFE_NAME, and no ".."):
# "no two dots in a row" is spelled without a look-ahead, so every JSON Schema tool reads it.
NAME_MAX = 64
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9_-]|\.[A-Za-z0-9_-])*\.?"
NAME_PATTERN = f"^{_NAME}$"
# ``name`` or ``name@version``.
REF_PATTERN = f"^{_NAME}(?:@{_NAME})?$"
REF_MAX = 2 * NAME_MAX + 1
# A lora_path, in characters; the server also holds each folder name to 255 bytes (NAME_MAX
# of the filesystem) and the whole path to 4,095 bytes.
PATH_MAX_CHARS = 1024
# Read once at import: the schema lists them; the service checks again on every request.
LANGUAGE_CODES: tuple[str, ...] = tuple(LANGUAGES)
REGION_CODES: tuple[str, ...] = tuple(load_policies()) or tuple(REGIONS)
Language = Literal[LANGUAGE_CODES]  # type: ignore[valid-type]
# Regions are case-insensitive ("eu" is EU): the schema lists both spellings.
Region = Literal[(*REGION_CODES, *(r.lower() for r in REGION_CODES))]  # type: ignore[valid-type]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class TextPart(_Body):
    type: Literal["text"]
    text: str


class ChatMessage(_Body):
    role: Literal["system", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = None

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class StreamOptions(_Body):
    include_usage: bool = False


class JSONSchemaSpec(_Body):
    name: str | None = None
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Body):
    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: JSONSchemaSpec | None = None


class StructuredOutputsParams(_Body):
    choice: list[str] | None = None
    json_: dict[str, Any] | str | None = Field(None, alias="json")


class SamplingFields(_Body):
    """Fields shared by chat and text completions."""

    model: str = Field(min_length=1, max_length=256)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stop: StopString | Annotated[list[StopString], Field(max_length=MAX_STOP)] | None = None
    seed: int | None = None
    user: str | None = Field(None, max_length=256)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=1, description="Only one choice per request is served.")
    presence_penalty: float = Field(0.0, ge=0.0, le=0.0)
    frequency_penalty: float = Field(0.0, ge=0.0, le=0.0)
    # vLLM extras.
    repetition_penalty: float = Field(1.0, gt=0.0, le=2.0)
    ignore_eos: bool = False
    structured_outputs: StructuredOutputsParams | None = None
    # Workbench extra: cut the oldest turns when the prompt does not fit (default: refuse).
    truncate: bool = False

    @field_validator("stop", mode="before")
    @classmethod
    def _stops(cls, v: object) -> object:
        stops = [v] if isinstance(v, str) else v
        if isinstance(stops, list) and (len(stops) > MAX_STOP or any(s == "" for s in stops)):
            raise ValueError(f"stop takes at most {MAX_STOP} non-empty strings")
        return stops


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    response_format: ResponseFormat | None = None
    logprobs: Literal[False] | None = None
    # Workbench extras: the customer's language (a code such as "de") and the store region
    # whose return policy grounds the answer; with either, the server builds the same prompt
    # the page does for that question.
    lang: Language | None = Field(None, description="The customer's language code.")
    region: Region | None = Field(None, description="A store region whose return policy grounds "
                                  "the answer (case-insensitive).")

    @field_validator("lang", mode="before")
    @classmethod
    def _known_lang(cls, v: object) -> object:
        if v is not None and v not in LANGUAGE_CODES:
            raise ValueError(unknown_name_message("language", str(v), sorted(LANGUAGE_CODES)))
        return v

    @field_validator("region", mode="before")
    @classmethod
    def _known_region(cls, v: object) -> object:
        if v is not None and (not isinstance(v, str) or v.upper() not in REGION_CODES):
            raise ValueError(unknown_name_message("region", str(v), sorted(REGION_CODES)))
        return v.upper() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _one_limit(self) -> "ChatCompletionRequest":
        if self.max_tokens is None:
            self.max_tokens = self.max_completion_tokens
        return self


class CompletionRequest(SamplingFields):
    prompt: str | Annotated[list[str], Field(min_length=1, max_length=1)]
    echo: Literal[False] = False
    logprobs: None = None

    @field_validator("prompt", mode="before")
    @classmethod
    def _one_prompt(cls, v: object) -> object:
        if isinstance(v, list) and len(v) != 1:
            raise ValueError("send one prompt per request")
        return v

    def text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


# ---- responses -------------------------------------------------------------------------------
class PromptTokensDetails(BaseModel):
    cached_tokens: int = 0


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails = Field(default_factory=PromptTokensDetails)


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"] | None
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    finish_reason: Literal["stop", "length"] | None
    logprobs: None = None


class TextCompletion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "workbench"
    root: str
    parent: str | None = None
    max_model_len: int | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def ref_field(**kwargs: Any) -> Any:
    """An adapter ``name`` or ``name@version``."""
    return Field(min_length=1, max_length=REF_MAX, pattern=REF_PATTERN, **kwargs)


class LoadLoraRequest(_Body):
    lora_name: str = ref_field(description="The name to serve it under, or name@version.")
    lora_path: str = Field(min_length=1, max_length=PATH_MAX_CHARS,
                           description="An adapter folder inside the registry or WORKBENCH_LORA_ROOTS.")


class UnloadLoraRequest(_Body):
    lora_name: str = ref_field()


class RollbackLoraRequest(_Body):
    lora_name: str = ref_field()
    version: str | None = Field(None, min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN)


class ErrorInfo(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: int | str | None = None


class ErrorResponse(BaseModel):
    error: ErrorInfo
