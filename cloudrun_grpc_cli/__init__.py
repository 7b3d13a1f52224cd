"""crgrpc: a gRPC client for services behind Google Cloud Run's authentication."""

__version__ = "0.1.0"
__all__ = ["__version__"]
