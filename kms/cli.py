"""The ``kms`` command. For now: ``kms info`` (which AEAD backend is live).
The server command arrives with the key service."""
import argparse
import json
import sys
from typing import List, Optional


def _info(_args: argparse.Namespace) -> int:
    import kms
    from kms import aead

    print(json.dumps({
        "version": kms.__version__,
        "aead_backend": aead.BACKEND,
        "aead_backends_available": list(aead.available_backends()),
    }, indent=2))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="kms", description="Self-hosted key management service")
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="show the version and the live AES-GCM backend")
    info.set_defaults(func=_info)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
