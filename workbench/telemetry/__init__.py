"""Request metrics: a ring buffer of ended requests for live views, and the Prometheus
exposition with vLLM's metric names."""
