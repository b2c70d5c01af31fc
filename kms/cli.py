"""The ``kms`` command: ``kms server`` runs the service; ``kms info`` shows
the version and the live AES-GCM backend; ``kms store check|repair``
inspects a data directory's key store; ``kms accounts``, ``policies`` and
``tokens`` (create, list, revoke, rotate-root) manage access on the data
directory, also while the server runs."""
import argparse
import contextlib
import http.client
import json
import logging
import os
import re
import sys
from typing import Callable, List, Optional, TypeVar
from urllib.parse import urlsplit

from kms import envelope, errors
from kms.numbers import ascii_int
from kms.api.tencent.replay import PROBE as REPLAY_PROBE
from kms.api.tencent.actions import DEFAULT_REGION
from kms.server import DEFAULT_LIMITS, Limits
from kms.service.keys import DEFAULT_KEY_LIMIT
from kms.service.tokens import MAX_TTL

MAX_WORKERS = 256
LOG_LEVELS = ["debug", "info", "warning", "error"]
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

    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT)
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
    if args.no_console:
        os.environ["KMS_NO_CONSOLE"] = "1"
    else:
        from kms.console.sessions import reset
        reset(runtime.data_dir)  # console sessions do not outlive the server
    if args.scheduler_period is not None:
        os.environ["KMS_SCHEDULER_PERIOD"] = str(args.scheduler_period)
    if args.allowed_host:
        os.environ["KMS_ALLOWED_HOSTS"] = ",".join(args.allowed_host)
    if args.replay_slots is not None:
        os.environ["KMS_REPLAY_SLOTS"] = str(args.replay_slots)
    os.environ["KMS_REGION"] = args.region
    if args.key_limit is not None:
        os.environ["KMS_KEY_LIMIT"] = str(args.key_limit)
    os.environ["KMS_SYMMETRIC"] = {"AES_256": "aes", "SM4": "sm4"}[args.symmetric_algorithm]
    limits = Limits(header_timeout=args.header_timeout, body_timeout=args.body_timeout,
                    body_min_rate=args.body_min_rate, max_connections=args.max_connections)
    return serve(args.host, args.port, args.workers, _http_protocol(args.http), root_key,
                 data_dir=runtime.data_dir, limits=limits, log_level=args.log_level,
                 keep_alive=args.keep_alive_timeout, console=not args.no_console)


def _http_protocol(choice: str):
    """The HTTP front end: kms.api.http1 (httptools, the hot routes served
    without ASGI) when available, else h11; uvicorn-httptools is the same
    protocol with every request through uvicorn's ASGI cycle."""
    if choice == "h11":
        return "h11"
    try:
        from kms.api.http1 import Http1Protocol
        from kms.api.protocol import VaultHttpToolsProtocol
    except ImportError:
        if choice != "auto":
            raise errors.InvalidParameter(f"--http {choice} needs the httptools package") from None
        return "h11"
    return VaultHttpToolsProtocol if choice == "uvicorn-httptools" else Http1Protocol


def _store(args: argparse.Namespace) -> int:
    from kms.server import secure_data_dir
    from kms.store import log as store_log

    secure_data_dir(args.data_dir)

    path = os.path.join(args.data_dir, "store.log")
    if args.action == "check":
        _, problem = store_log.check(path)
        print(f"{path}: {'intact' if problem is None else problem.problem}")
        return 0 if problem is None else 1
    result = store_log.repair(path, drop_damaged=args.drop_damaged)
    print(result or f"{path}: intact, nothing to repair")
    return 0


def _runtime(args: argparse.Namespace):
    from kms.server import open_data_dir

    return open_data_dir(args.data_dir, initialise=False)


def _accounts(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    if args.action == "create":
        creds = runtime.accounts.create("service" if args.service else "user", args.name)
        print(json.dumps({"SecretId": creds["secret_id"], "SecretKey": creds["secret_key"]}, indent=2))
        print("The SecretKey is shown only now.", file=sys.stderr)
    elif args.action == "delete":
        runtime.accounts.delete(args.name)
    else:
        print(json.dumps(runtime.accounts.listing(), indent=2))
    return 0


def _policies(args: argparse.Namespace) -> int:

    runtime = _runtime(args)
    policies = runtime.services.policies
    if args.action == "put":
        with open(args.file) as f:
            try:
                statements = json.load(f)
            except ValueError as exc:
                raise errors.InvalidParameter(f"{args.file} is not JSON: {exc}") from None
        policies.put(args.name, statements)
    elif args.action in ("attach", "detach"):
        policies.attach(args.name, args.account, attach=args.action == "attach")
    elif args.action == "delete":
        policies.delete(args.name)
    else:
        print(json.dumps(list(runtime.store.items("policy").values()), indent=2))
    return 0


def _tokens(args: argparse.Namespace) -> int:
    from kms.server import rotate_root_token

    runtime = _runtime(args)
    named = getattr(args, "account", None)
    account = runtime.accounts.resolve(named) if named else None
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
    with open(args.input, "rb") as src:  # a wrong path fails before the server is asked
        with contextlib.closing(_client(args)) as client:
            data_key, wrapped = client.data_key(args.key)
        progress = envelope.Progress(os.fstat(src.fileno()).st_size, True if args.progress else None)
        tmp = args.output + ".partial"
        try:
            with open(tmp, "wb") as dst:
                envelope.encrypt_stream(src, dst, args.key, data_key, wrapped, args.chunk_size,
                                        progress.advance)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)  # a partial envelope is no envelope
            raise
    os.replace(tmp, args.output)
    return 0


def _decrypt_file(args: argparse.Namespace) -> int:
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
# ASCII only: float() also takes "٥", "5_000", " 5 " and "1e400"; integers
# follow kms.numbers, the rule of every protocol.
_DECIMAL_FRACTION = re.compile(r"-?([0-9]{1,18}(\.[0-9]{0,9})?|\.[0-9]{1,9})")


def _number_text(kind: Callable[[str], Number], text: str) -> Optional[Number]:
    if kind is int:
        return ascii_int(text, 18)  # type: ignore[return-value]
    return kind(text) if _DECIMAL_FRACTION.fullmatch(text) else None


def _bounded(kind: Callable[[str], Number], low: Number, high: Number) -> Callable[[str], Number]:
    """An argparse type: a number of `kind` within [low, high], with a clear
    message (argparse exits 2 on it)."""

    def parse(text: str) -> Number:
        value = _number_text(kind, text)
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a{'n integer' if kind is int else ' number'} from {low} to {high}")
        return value

    parse.__name__ = "integer" if kind is int else "number"  # argparse names the type in errors
    return parse


_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)(:[0-9]{1,5})?\Z")


REGION_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,39}\Z")


def _region(text: str) -> str:
    if not REGION_RE.match(text):
        raise argparse.ArgumentTypeError("a region is 1 to 40 lowercase letters, digits and -")
    return text


def _host(text: str) -> str:
    """An --allowed-host value: a host name or address, with an optional port,
    as a Host header carries it (no commas: they separate KMS_ALLOWED_HOSTS)."""
    if not _HOST.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a host name or address (with an optional :port)")
    return text


def _url(text: str) -> str:
    """A --url value: http(s)://host[:port], checked here so that a typo is a
    usage error rather than a failure deep in the client."""
    parts = urlsplit(text)
    try:
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is not a number from 0 to 65535
        valid = False
    if not valid:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL")
    return text


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False) or action.default is argparse.SUPPRESS:
            return action.help or ""
        return super()._get_help_string(action) or ""


def _parser(sub: "argparse._SubParsersAction", name: str, helptext: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=helptext, description=helptext, formatter_class=_Formatter)


def _data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default="./kms-data", help="the data directory")


def _add_server(sub: "argparse._SubParsersAction") -> None:
    server = _parser(sub, "server", "run the KMS HTTP server")
    server.add_argument("--host", default="127.0.0.1", help="address to listen on")
    server.add_argument("--port", type=_bounded(int, 1, 65535), default=8300, help="port to listen on")
    server.add_argument("--workers", type=_bounded(int, 1, MAX_WORKERS),
                        default=min(os.cpu_count() or 1, MAX_WORKERS), help="worker processes")
    server.add_argument("--data-dir", default="./kms-data",
                        help="the data directory (created and initialised on first start)")
    server.add_argument("--log-level", choices=LOG_LEVELS, default="info",
                        help="the least severe messages the server and its workers log")
    server.add_argument("--no-console", action="store_true",
                        help="do not serve the web console under /console/")
    server.add_argument("--test-clock", action="store_true",
                        help="TESTS ONLY: allow POST /_test/clock to shift the service's clock")
    server.add_argument("--http", choices=["auto", "httptools", "uvicorn-httptools", "h11"], default="auto",
                        help="HTTP front end: httptools (C parser, the hot routes answered without "
                             "ASGI; auto picks it when installed), uvicorn-httptools (the same parser, "
                             "every request through uvicorn's ASGI cycle) or h11 (h11 has only the "
                             "keep-alive timeout, not the limits below)")
    server.add_argument("--scheduler-period", type=_bounded(float, 0.05, 86400.0), default=None,
                        metavar="SECONDS", help="seconds between scheduler passes (default: 30)")
    server.add_argument("--allowed-host", action="append", type=_host, metavar="HOST",
                        help="a Host header value signed Tencent requests may carry "
                             "(repeatable; default: any)")
    server.add_argument("--region", type=_region, default=DEFAULT_REGION,
                        help=f"the region the Tencent API's GetRegions names (default {DEFAULT_REGION})")
    server.add_argument("--symmetric-algorithm", choices=["AES_256", "SM4"], default="AES_256",
                        help="the cipher of new symmetric CMKs: AES_256 (default, as Tencent's FIPS regions) "
                             "or SM4 (SM4-GCM, as its SM regions; imported material is then 16 bytes)")
    server.add_argument("--key-limit", type=_bounded(int, 1, 10_000_000), default=None,
                        help=f"most keys the store holds, of every kind (default {DEFAULT_KEY_LIMIT})")
    server.add_argument("--replay-slots", type=_bounded(int, MIN_REPLAY_SLOTS, MAX_REPLAY_SLOTS),
                        default=None, metavar="N",
                        help="slots (16 bytes each) of the shared signature replay table "
                             "(default: its built-in size)")
    _add_connection_limits(server)
    server.set_defaults(func=_server)


def _add_connection_limits(server: argparse.ArgumentParser) -> None:
    limits = server.add_argument_group("slow and idle clients")
    limits.add_argument("--keep-alive-timeout", type=_bounded(int, 1, 3600), default=5,
                        metavar="SECONDS", help="close a kept-alive connection idle this long")
    limits.add_argument("--header-timeout", type=_bounded(float, 0.1, 3600.0),
                        default=DEFAULT_LIMITS.header_timeout, metavar="SECONDS",
                        help="a request's line and headers must arrive within this time of "
                             "the connection opening (first request) or of their first byte "
                             "(later requests; the wait between requests is "
                             "--keep-alive-timeout's) (else 408)")
    limits.add_argument("--body-timeout", type=_bounded(float, 0.1, 86400.0),
                        default=DEFAULT_LIMITS.body_timeout, metavar="SECONDS",
                        help="a body may take this long, plus 1 s per --body-min-rate bytes "
                             "received (else 408)")
    limits.add_argument("--body-min-rate", type=_bounded(int, 1, 1 << 30),
                        default=DEFAULT_LIMITS.body_min_rate, metavar="BYTES",
                        help="bytes per second a long body must average")
    limits.add_argument("--max-connections", type=_bounded(int, 1, 1_000_000),
                        default=DEFAULT_LIMITS.max_connections, metavar="N",
                        help="open connections per worker (lowered to fit the descriptor "
                             "limit); more are answered 503 at once and closed")


def _add_store_and_audit(sub: "argparse._SubParsersAction") -> None:
    store = _parser(sub, "store", "check or repair a data directory's key store")
    store.add_argument("action", choices=["check", "repair"], help="what to do")
    store.add_argument("--drop-damaged", action="store_true",
                       help="repair: also drop damaged bytes whose record count is unknown "
                            "(a damaged header) when intact records follow; their changes are lost")
    _data_dir_option(store)
    store.set_defaults(func=_store)

    audit = _parser(sub, "audit", "verify the audit log's hash chain")
    audit.add_argument("action", choices=["verify"], help="what to do")
    _data_dir_option(audit)
    audit.set_defaults(func=_audit)


def _actions(parent: argparse.ArgumentParser, func: Callable[[argparse.Namespace], int]
             ) -> Callable[[str, str], argparse.ArgumentParser]:
    """Each action its own parser, so its options and its positionals may
    come in any order (`create --service NAME` as well as `create NAME
    --service`), and each takes only what it uses."""
    actions = parent.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, helptext: str) -> argparse.ArgumentParser:
        parser = _parser(actions, name, helptext)
        _data_dir_option(parser)
        parser.set_defaults(func=func)
        return parser

    return action


def _add_accounts(sub: "argparse._SubParsersAction") -> None:
    action = _actions(_parser(sub, "accounts", "sub-accounts and service accounts (root's job)"), _accounts)
    create = action("create", "create an account; its SecretKey is shown once")
    create.add_argument("name", help="the account's name")
    create.add_argument("--service", action="store_true",
                        help="a service account: owns the service/NAME keys it uses")
    action("list", "list the accounts")
    action("delete", "delete an account").add_argument("name", metavar="SECRET_ID",
                                                       help="the account's SecretId")


def _add_policies(sub: "argparse._SubParsersAction") -> None:
    action = _actions(_parser(sub, "policies", "access policies for sub-accounts"), _policies)
    put = action("put", "create or replace a policy")
    put.add_argument("name", help="the policy's name")
    put.add_argument("--file", required=True,
                     help='a JSON list of statements [{"effect": "allow", '
                          '"actions": ["kms:Encrypt"], "resources": ["key/ID"]}]')
    action("list", "list the policies")
    action("delete", "delete a policy").add_argument("name", help="the policy's name")
    for verb in ("attach", "detach"):
        parser = action(verb, f"{verb} a policy {'to' if verb == 'attach' else 'from'} an account")
        parser.add_argument("name", help="the policy's name")
        parser.add_argument("--account", required=True, metavar="SECRET_ID", help="the account's SecretId")


def _add_tokens(sub: "argparse._SubParsersAction") -> None:
    action = _actions(_parser(sub, "tokens", "tokens for the Vault-style APIs (X-Vault-Token)"), _tokens)
    create = action("create", "issue a token for an account; shown once")
    create.add_argument("--account", required=True, help="account name or SecretId")
    create.add_argument("--ttl", type=_bounded(int, 0, MAX_TTL), default=0,
                        help="seconds until expiry; 0 = never")
    listing = action("list", "list tokens (accessors, never the tokens)")
    listing.add_argument("--account", help="only this account's tokens (name or SecretId)")
    revoke = action("revoke", "revoke one token, or every token of an account")
    revoke.add_argument("accessor", nargs="?", help="the token's accessor (kms tokens list)")
    revoke.add_argument("--account", help="this account's tokens (name or SecretId)")
    action("rotate-root", "a new root token that replaces every root token")


def _add_files(sub: "argparse._SubParsersAction") -> None:
    for verb, func, helptext in (("encrypt-file", _encrypt_file, "envelope-encrypt a local file with a data key from the server"),
                                 ("decrypt-file", _decrypt_file, "decrypt a file made by encrypt-file")):
        p = _parser(sub, verb, helptext)
        p.add_argument("input", help="the file to read")
        p.add_argument("output", help="the file to write (replaced only once complete)")
        if verb == "encrypt-file":
            p.add_argument("--key", required=True, help="transit key name that wraps the data key")
            p.add_argument("--chunk-size", type=_bounded(int, envelope.MIN_CHUNK, envelope.MAX_CHUNK),
                           default=envelope.DEFAULT_CHUNK, metavar="BYTES", help="bytes sealed per chunk")
        p.add_argument("--url", type=_url, default="http://127.0.0.1:8300", help="the server")
        p.add_argument("--token", help="a token (default: $KMS_TOKEN)")
        p.add_argument("--progress", action="store_true", help="always show progress")
        p.set_defaults(func=func)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kms", description="Self-hosted key management service",
                                     formatter_class=_Formatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_server(sub)
    _parser(sub, "info", "show the version and the live AES-GCM backend").set_defaults(func=_info)
    _add_store_and_audit(sub)
    _add_accounts(sub)
    _add_policies(sub)
    _add_tokens(sub)
    _add_files(sub)
    return parser


def _require_data_dir(args: argparse.Namespace) -> None:
    """Only `kms server` creates a data directory; every other command
    works on an existing one and must not leave an empty one behind."""
    data_dir = getattr(args, "data_dir", None)
    if data_dir is not None and args.func is not _server and not os.path.isdir(data_dir):
        raise errors.InvalidParameter(f"no data directory at {data_dir} (kms server creates one; "
                                      "check --data-dir)")


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.func is not _server:
        # Warnings (a data directory's mode tightened, say) reach the
        # operator in the same voice as errors; `kms server` logs its own way.
        logging.basicConfig(level=logging.WARNING, format="kms: %(message)s")
    try:
        _require_data_dir(args)
        return int(args.func(args))
    except errors.KMSError as exc:
        print(f"kms: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from kms.client import ClientError

        if isinstance(exc, (ClientError, OSError, http.client.HTTPException)):
            print(f"kms: {exc}", file=sys.stderr)
            return 2
        if os.environ.get("KMS_DEBUG"):
            raise
        # A bug, not the operator's mistake: one line, and the way to more.
        print(f"kms: unexpected error: {type(exc).__name__}: {exc} "
              "(set KMS_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
