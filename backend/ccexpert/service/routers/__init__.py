"""API routers: health (liveness/readiness), info, captions, metrics."""
