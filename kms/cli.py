"""The ``kms`` command: ``kms server`` runs the service; ``kms info`` shows
the version and the live AES-GCM backend; ``kms store check|repair``
inspects a data directory's key store; ``kms accounts``, ``policies`` and
``tokens`` (create, list, revoke, rotate-root) manage access on the data
directory, also while the server runs."""
import argparse
import contextlib
import json
import logging
import os
import re
import sys
from typing import Callable, List, Optional, TypeVar

from kms import errors
from kms.api.tencent.replay import PROBE as REPLAY_PROBE
from kms.service.tokens import MAX_TTL

MAX_WORKERS = 256
# The replay table is searched in runs of PROBE slots, so fewer slots than
# that make no sense; 2^26 slots of 16 bytes are a 1 GiB preallocated file,
# enough for about 100,000 signed requests a second.
MIN_REPLAY_SLOTS, MAX_REPLAY_SLOTS = REPLAY_PROBE, 1 << 26


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
    from kms import rootkey
    from kms.server import LOG_FORMAT, RootCredentials, open_data_dir, serve

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    # Root secrets given in the environment leave it before anything else
    # runs, so no process started from here inherits them; the workers get
    # the root key handed over in memory instead.
    given = RootCredentials.from_environment(scrub=True)
    root_key = rootkey.take_from_environment()
    runtime = open_data_dir(args.data_dir, given=given)  # initialises on first start
    del given
    if runtime.new_credentials:
        # Only what the server generated: secrets given from outside are
        # the operator's and are never echoed or written anywhere.
        print("Initialised", runtime.data_dir, file=sys.stderr)
        print("Root credentials (shown once; also saved 0600 in root-credentials.json):", file=sys.stderr)
        for field, value in runtime.new_credentials.items():
            print(f"  {field + ':':<11}{value}", file=sys.stderr)
        runtime.new_credentials = None
    runtime.store.close()
    os.environ["KMS_DATA_DIR"] = runtime.data_dir
    if args.test_clock:
        os.environ["KMS_TEST_CLOCK"] = "1"
    if args.scheduler_period is not None:
        os.environ["KMS_SCHEDULER_PERIOD"] = str(args.scheduler_period)
    if args.allowed_host:
        os.environ["KMS_ALLOWED_HOSTS"] = ",".join(args.allowed_host)
    if args.replay_slots is not None:
        os.environ["KMS_REPLAY_SLOTS"] = str(args.replay_slots)
    return serve(args.host, args.port, args.workers, _http_protocol(args.http), root_key)


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
    from kms.server import secure_data_dir
    from kms.store import log as store_log

    secure_data_dir(args.data_dir)

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
    from kms.server import rotate_root_token

    if args.accessor and args.action != "revoke":
        raise errors.InvalidParameter(f"{args.action} takes no ACCESSOR")
    runtime = _runtime(args)
    account = runtime.accounts.resolve(args.account) if args.account else None
    if args.action == "create":
        if account is None:
            raise errors.InvalidParameter("give --account NAME (or its SecretId)")
        issued = runtime.tokens.create(account["secret_id"], args.ttl)
        print(json.dumps(issued, indent=2))
    elif args.action == "list":
        print(json.dumps(runtime.tokens.listing(account and account["secret_id"]), indent=2))
    elif args.action == "revoke":
        if args.accessor:
            runtime.tokens.revoke_accessor(args.accessor, account and account["secret_id"])
            revoked = [args.accessor]
        elif account is not None:
            revoked = runtime.tokens.revoke_account(account["secret_id"])
        else:
            raise errors.InvalidParameter("give an ACCESSOR (see kms tokens list) or --account NAME")
        print(json.dumps({"revoked": revoked}, indent=2))
    else:  # rotate-root
        if account is not None:
            raise errors.InvalidParameter("rotate-root takes no --account")
        issued = rotate_root_token(runtime)
        print(json.dumps(issued, indent=2))
        print("The new root token is shown only now; every older root token is revoked.",
              file=sys.stderr)
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
    from kms.server import secure_data_dir

    secure_data_dir(args.data_dir)

    path = os.path.join(args.data_dir, "audit.log")
    count, problem = audit.verify(path)
    if problem is None:
        print(f"{path}: chain intact, {count} entries")
        return 0
    print(f"{path}: {problem} (the {count} entries before it are intact)")
    return 1


Number = TypeVar("Number", int, float)


def _bounded(kind: Callable[[str], Number], low: Number, high: Number) -> Callable[[str], Number]:
    """An argparse type: a number of `kind` within [low, high], with a clear
    message (argparse exits 2 on it)."""

    def parse(text: str) -> Number:
        try:
            value = kind(text)
        except ValueError:
            value = None
        # NaN compares false with everything, so it fails the range check too.
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a{'n integer' if kind is int else ' number'} from {low} to {high}")
        return value

    return parse


_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)(:[0-9]{1,5})?$")


def _host(text: str) -> str:
    """An --allowed-host value: a host name or address, with an optional port,
    as a Host header carries it (no commas: they separate KMS_ALLOWED_HOSTS)."""
    if not _HOST.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a host name or address (with an optional :port)")
    return text


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="kms", description="Self-hosted key management service")
    sub = parser.add_subparsers(dest="command", required=True)

    server = sub.add_parser("server", help="run the KMS HTTP server")
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=_bounded(int, 1, 65535), default=8300)
    server.add_argument("--workers", type=_bounded(int, 1, MAX_WORKERS),
                        default=min(os.cpu_count() or 1, MAX_WORKERS))
    server.add_argument("--data-dir", default="./kms-data")
    server.add_argument("--test-clock", action="store_true",
                        help="TESTS ONLY: allow POST /_test/clock to shift the service's clock")
    server.add_argument("--http", choices=["auto", "httptools", "h11"], default="auto",
                        help="HTTP parser: httptools (C; auto picks it when installed) or h11")
    server.add_argument("--scheduler-period", type=_bounded(float, 0.05, 86400.0), default=None,
                        help="seconds between scheduler passes (default 30)")
    server.add_argument("--allowed-host", action="append", type=_host, metavar="HOST",
                        help="a Host header value signed Tencent requests may carry "
                             "(repeatable; default: any)")
    server.add_argument("--replay-slots", type=_bounded(int, MIN_REPLAY_SLOTS, MAX_REPLAY_SLOTS),
                        default=None, metavar="N",
                        help="slots (16 bytes each) of the shared signature replay table "
                             "(default: its built-in size)")
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
    tokens.add_argument("action", choices=["create", "list", "revoke", "rotate-root"])
    tokens.add_argument("accessor", nargs="?", help="revoke: the token's accessor (kms tokens list)")
    tokens.add_argument("--account", help="account name or SecretId (create; list and revoke: "
                        "only this account's tokens)")
    tokens.add_argument("--ttl", type=_bounded(int, 0, MAX_TTL), default=0,
                        help="seconds until expiry; 0 = never")
    tokens.add_argument("--data-dir", default="./kms-data")
    tokens.set_defaults(func=_tokens)

    for verb, func, helptext in (("encrypt-file", _encrypt_file, "envelope-encrypt a local file with a data key from the server"),
                                 ("decrypt-file", _decrypt_file, "decrypt a file made by encrypt-file")):
        p = sub.add_parser(verb, help=helptext)
        p.add_argument("input")
        p.add_argument("output")
        if verb == "encrypt-file":
            p.add_argument("--key", required=True, help="transit key name that wraps the data key")
            p.add_argument("--chunk-size", type=_bounded(int, 1024, 1 << 30), default=1 << 20)
        p.add_argument("--url", default="http://127.0.0.1:8300")
        p.add_argument("--token", help="a token (default: $KMS_TOKEN)")
        p.add_argument("--progress", action="store_true", help="always show progress")
        p.set_defaults(func=func)

    audit = sub.add_parser("audit", help="verify the audit log's hash chain")
    audit.add_argument("action", choices=["verify"])
    audit.add_argument("--data-dir", default="./kms-data")
    audit.set_defaults(func=_audit)

    args = parser.parse_args(argv)
    if args.func is not _server:
        # Warnings (a data directory's mode tightened, say) reach the
        # operator in the same voice as errors; `kms server` logs its own way.
        logging.basicConfig(level=logging.WARNING, format="kms: %(message)s")
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
