"""What operators see: the context every log line carries (context), JSON logs with
secrets kept out (logs), Prometheus metrics (metrics) and OpenTelemetry tracing
(tracing)."""
