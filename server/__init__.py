"""The gRPC server: a protocol adapter. `app` is its composition root; servicers read a
request, call core/, map the result; interceptors do one concern each (request id,
tracing, metrics, errors, overload, auth, rate limits). server/ imports core/ and never
workers/ (docs/architecture.md)."""
