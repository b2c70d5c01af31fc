"""Moved to kms.codecs.b64text (the codecs' package); this name stays for
the callers in kms.service until they import it from there."""
from kms.codecs.b64text import BAD_BASE64, bad_base64, decode, first_bad

__all__ = ["BAD_BASE64", "bad_base64", "decode", "first_bad"]
