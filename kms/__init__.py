"""kms: a self-hosted key management service with encryption as a service.

Packages, lowest first (each may import only those above it):
errors -> _native -> aead.
"""

__version__ = "0.1.0"
