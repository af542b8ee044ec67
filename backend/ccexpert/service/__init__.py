"""The HTTP captioning service (FastAPI): ``create_app(settings, engine)``; run it with ``ccexpert serve``."""

from .app import create_app
from .settings import Settings

__all__ = ["Settings", "create_app"]
