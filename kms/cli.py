"""The ``kms`` command: ``kms server`` runs the service; ``kms info`` shows
the version and the live AES-GCM backend; ``kms store check|repair``
inspects a data directory's key store."""
import argparse
import contextlib
import json
import logging
import os
import sys
from typing import List, Optional

from kms import errors


def _info(args: argparse.Namespace) -> int:
    import kms
    from kms import aead

    print(json.dumps({
        "version": kms.__version__,
        "aead_backend": aead.BACKEND,
        "aead_backends_available": list(aead.available_backends()),
    }, indent=2))
    return 0


def _server(args: argparse.Namespace) -> int:
    import uvicorn

    from kms.server import open_data_dir

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    runtime = open_data_dir(args.data_dir)  # initialises on first start
    if runtime.new_credentials:
        print("Initialised", runtime.data_dir, file=sys.stderr)
        print("Root credentials (shown once; also saved 0600 in root-credentials.json):", file=sys.stderr)
        print(f"  SecretId:  {runtime.new_credentials['secret_id']}", file=sys.stderr)
        print(f"  SecretKey: {runtime.new_credentials['secret_key']}", file=sys.stderr)
        print(f"  Token:     {runtime.new_credentials['token']}", file=sys.stderr)
    runtime.store.close()
    os.environ["KMS_DATA_DIR"] = runtime.data_dir
    if args.test_clock:
        os.environ["KMS_TEST_CLOCK"] = "1"
    if args.scheduler_period is not None:
        os.environ["KMS_SCHEDULER_PERIOD"] = str(args.scheduler_period)
    uvicorn.run("kms.api.app:app_from_environment", factory=True, host=args.host,
                port=args.port, workers=args.workers, log_level="warning",
                access_log=False, http=_http_protocol(args.http),
                # Nothing reads X-Forwarded-* (audit entries name accounts, not
                # addresses), and the server need not announce itself.
                proxy_headers=False, server_header=False)
    return 0


def _http_protocol(choice: str):
    """httptools (with Vault's LIST) when available, else h11."""
    if choice == "h11":
        return "h11"
    try:
        from kms.api.protocol import VaultHttpToolsProtocol
    except ImportError:
        if choice == "httptools":
            raise errors.InvalidParameter("--http httptools needs the httptools package") from None
        return "h11"
    return VaultHttpToolsProtocol


def _store(args: argparse.Namespace) -> int:
    from kms.store import log as store_log

    path = os.path.join(args.data_dir, "store.log")
    if args.action == "check":
        good, problem = store_log.check(path)
        print(f"{path}: {'intact' if problem is None else problem} ({good} bytes intact)")
        return 0 if problem is None else 1
    result = store_log.repair(path)
    print(result or f"{path}: intact, nothing to repair")
    return 0


def _runtime(args: argparse.Namespace):
    from kms.server import open_data_dir

    return open_data_dir(args.data_dir, initialise=False)


def _accounts(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    if args.action == "create":
        if not args.name:
            raise errors.InvalidParameter("give the account a name")
        creds = runtime.accounts.create("service" if args.service else "user", args.name)
        print(json.dumps({"SecretId": creds["secret_id"], "SecretKey": creds["secret_key"]}, indent=2))
        print("The SecretKey is shown only now.", file=sys.stderr)
    elif args.action == "delete":
        runtime.accounts.delete(args.name)
    else:
        print(json.dumps(runtime.accounts.listing(), indent=2))
    return 0


def _policies(args: argparse.Namespace) -> int:
    from kms.service.policies import PolicyService

    runtime = _runtime(args)
    policies = PolicyService(runtime.store)
    if args.action == "put":
        with open(args.file) as f:
            try:
                statements = json.load(f)
            except ValueError as exc:
                raise errors.InvalidParameter(f"{args.file} is not JSON: {exc}") from None
        policies.put(args.name, statements)
    elif args.action in ("attach", "detach"):
        if not args.account:
            raise errors.InvalidParameter("give --account SECRET_ID")
        policies.attach(args.name, args.account, attach=args.action == "attach")
    elif args.action == "delete":
        policies.delete(args.name)
    else:
        print(json.dumps(list(runtime.store.items("policy").values()), indent=2))
    return 0


def _tokens(args: argparse.Namespace) -> int:
    from kms.service.tokens import TokenService

    runtime = _runtime(args)
    matches = [r for r in runtime.store.items("account").values()
               if args.account in (r["name"], r["secret_id"])]
    if len(matches) != 1:
        raise errors.InvalidParameter(f"{args.account!r} names {len(matches)} accounts; give its SecretId")
    issued = TokenService(runtime.store, runtime.clock).create(matches[0]["secret_id"], args.ttl)
    print(json.dumps({"token": issued["token"], "expires": issued["expires"]}, indent=2))
    return 0


def _client(args: argparse.Namespace):
    from kms.client import Client

    token = args.token or os.environ.get("KMS_TOKEN")
    if not token:
        raise errors.InvalidParameter("give --token or set KMS_TOKEN")
    return Client(args.url, token)


def _encrypt_file(args: argparse.Namespace) -> int:
    from kms import envelope

    with contextlib.closing(_client(args)) as client:
        data_key, wrapped = client.data_key(args.key)
    total = os.path.getsize(args.input)
    progress = envelope.Progress(total, True if args.progress else None)
    tmp = args.output + ".partial"
    with open(args.input, "rb") as src, open(tmp, "wb") as dst:
        envelope.encrypt_stream(src, dst, args.key, data_key, wrapped, args.chunk_size, progress.advance)
    os.replace(tmp, args.output)
    return 0


def _decrypt_file(args: argparse.Namespace) -> int:
    from kms import envelope

    with open(args.input, "rb") as src:
        header = envelope.read_header(src)
        with contextlib.closing(_client(args)) as client:
            data_key = client.decrypt_data_key(header["key"], header["wrapped_key"])
        progress = envelope.Progress(os.path.getsize(args.input), True if args.progress else None)
        tmp = args.output + ".partial"
        try:
            with open(tmp, "wb") as dst:
                envelope.decrypt_stream(src, dst, header, data_key, progress.advance)
        except BaseException:
            os.unlink(tmp)  # never leave unverified plaintext behind
            raise
    os.replace(tmp, args.output)
    return 0


def _audit(args: argparse.Namespace) -> int:
    from kms import audit

    path = os.path.join(args.data_dir, "audit.log")
    count, problem = audit.verify(path)
    if problem is None:
        print(f"{path}: chain intact, {count} entries")
        return 0
    print(f"{path}: {problem} (the {count} entries before it are intact)")
    return 1


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="kms", description="Self-hosted key management service")
    sub = parser.add_subparsers(dest="command", required=True)

    server = sub.add_parser("server", help="run the KMS HTTP server")
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=int, default=8300)
    server.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    server.add_argument("--data-dir", default="./kms-data")
    server.add_argument("--test-clock", action="store_true",
                        help="TESTS ONLY: allow POST /_test/clock to shift the service's clock")
    server.add_argument("--http", choices=["auto", "httptools", "h11"], default="auto",
                        help="HTTP parser: httptools (C; auto picks it when installed) or h11")
    server.add_argument("--scheduler-period", type=float, default=None,
                        help="seconds between scheduler passes (default 30)")
    server.set_defaults(func=_server)

    info = sub.add_parser("info", help="show the version and the live AES-GCM backend")
    info.set_defaults(func=_info)

    store = sub.add_parser("store", help="check or repair a data directory's key store")
    store.add_argument("action", choices=["check", "repair"])
    store.add_argument("--data-dir", default="./kms-data")
    store.set_defaults(func=_store)

    accounts = sub.add_parser("accounts", help="sub-accounts and service accounts (root's job)")
    accounts.add_argument("action", choices=["create", "list", "delete"])
    accounts.add_argument("name", nargs="?", help="name (create) or SecretId (delete)")
    accounts.add_argument("--service", action="store_true",
                          help="a service account: owns the service/NAME keys it uses")
    accounts.add_argument("--data-dir", default="./kms-data")
    accounts.set_defaults(func=_accounts)

    policies = sub.add_parser("policies", help="access policies for sub-accounts")
    policies.add_argument("action", choices=["put", "list", "delete", "attach", "detach"])
    policies.add_argument("name", nargs="?", default="")
    policies.add_argument("--file", help="put: a JSON list of statements "
                          '[{"effect": "allow", "actions": ["kms:Encrypt"], "resources": ["key/ID"]}]')
    policies.add_argument("--account", help="attach/detach: the SecretId")
    policies.add_argument("--data-dir", default="./kms-data")
    policies.set_defaults(func=_policies)

    tokens = sub.add_parser("tokens", help="tokens for the Vault-style APIs (X-Vault-Token)")
    tokens.add_argument("action", choices=["create"])
    tokens.add_argument("--account", required=True, help="account name or SecretId")
    tokens.add_argument("--ttl", type=int, default=0, help="seconds until expiry; 0 = never")
    tokens.add_argument("--data-dir", default="./kms-data")
    tokens.set_defaults(func=_tokens)

    for verb, func, helptext in (("encrypt-file", _encrypt_file, "envelope-encrypt a local file with a data key from the server"),
                                 ("decrypt-file", _decrypt_file, "decrypt a file made by encrypt-file")):
        p = sub.add_parser(verb, help=helptext)
        p.add_argument("input")
        p.add_argument("output")
        if verb == "encrypt-file":
            p.add_argument("--key", required=True, help="transit key name that wraps the data key")
            p.add_argument("--chunk-size", type=int, default=1 << 20)
        p.add_argument("--url", default="http://127.0.0.1:8300")
        p.add_argument("--token", help="a token (default: $KMS_TOKEN)")
        p.add_argument("--progress", action="store_true", help="always show progress")
        p.set_defaults(func=func)

    audit = sub.add_parser("audit", help="verify the audit log's hash chain")
    audit.add_argument("action", choices=["verify"])
    audit.add_argument("--data-dir", default="./kms-data")
    audit.set_defaults(func=_audit)

    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except errors.KMSError as exc:
        print(f"kms: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from kms.client import ClientError

        if isinstance(exc, (ClientError, OSError)):
            print(f"kms: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
