"""API routers (thin: parse via ``schemas``, call ``CaptionServing``, return): health (liveness/readiness), info,
auth check, captions, metrics, and the ``/docs`` page."""
