"""The OpenAI- and vLLM-compatible HTTP API over one Workbench (see ``workbench.api.app``)."""
