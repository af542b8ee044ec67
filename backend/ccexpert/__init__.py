"""CCExpert change captioning: model, inference engine, HTTP service and command line."""

__version__ = "0.1.0"
