"""API routers: health (liveness/readiness), info, auth check, captions, metrics."""
