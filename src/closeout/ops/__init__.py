"""Operations: health and readiness probes and Prometheus metrics, for load balancers and
monitoring (no login; /metrics needs its token or the loopback address)."""
