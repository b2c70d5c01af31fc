"""Bringing a data directory to life: root key, store, services, and the
root account's credentials on first start; and running the workers.

Files in the data directory (all 0600, the directory 0700; wider modes found
on start are tightened, with a warning):
    root.key                  32 random bytes (unless KMS_ROOT_KEY is set)
    store.log, store.lock     the key store (kms.store)
    root-credentials.json     the root secrets the server generated itself

First start: the root account and its first token are one store record, so
no crash leaves an account without its token. The secrets the server
generated (not those given in KMS_ROOT_*) are saved in root-credentials.json
before that record is written: a crash after the commit always leaves the
file, a crash before it leaves nothing committed, and the next start
initialises again. A directory that older versions left half-initialised (a
root account without a live token) is finished the same way; one whose root
tokens were all revoked later is not (see _initialise).
"""
import dataclasses
import json
import logging
import os
import resource
import stat
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Union

import uvicorn
from cryptography.exceptions import InvalidTag
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from kms import errors
from kms.clock import Clock
from kms.durable import replace_file
from kms.rootkey import FileRootKey, RootKeyError, Wrapper, hand_over, source_for
from kms.service.accounts import AccountService
from kms.service.keys import DEFAULT_KEY_LIMIT, KeyService
from kms.service.services import Services
from kms.service.tokens import TokenService
from kms.store import Build, LogStore, Op, build_together

CANARY = b"kms root key check"
CREDENTIALS_FILE = "root-credentials.json"
INITIALISED = "root-initialised"  # meta/<this>: the root account got its first token
# The variables that carry root secrets into `kms server` (KMS_ROOT_KEY is
# kms.rootkey's); none of them may reach a worker.
SECRET_ID_VAR, SECRET_KEY_VAR, TOKEN_VAR = "KMS_ROOT_SECRET_ID", "KMS_ROOT_SECRET_KEY", "KMS_ROOT_TOKEN"
LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"
# Descriptors a worker keeps free beyond its connections: files it opens per
# request or while compacting (store, audit, temporary files), imports, and
# the transport's own. A connection bound within the limit means accept()
# never fails with EMFILE, which uvloop answers by closing the listener.
SPARE_FDS = 64
LISTEN_BACKLOG = 512  # also the most connections one accept pass takes in

log = logging.getLogger("kms.server")


@dataclass(frozen=True)
class Limits:
    """Per-connection time limits and the per-worker connection bound."""

    header_timeout: float = 10.0  # seconds to the end of a head: from open (first), its first byte (later)
    body_timeout: float = 30.0  # seconds a body may take, plus its size / body_min_rate
    body_min_rate: int = 64 * 1024  # bytes per second a long body must average
    max_connections: int = 1000  # per worker; the worker lowers it below its descriptor limit


DEFAULT_LIMITS = Limits()


class DataDirError(errors.KMSError):
    code = "data_dir_error"


@dataclass(frozen=True)
class RootCredentials:
    """Root secrets given from outside; None where the server generates one."""

    secret_id: Optional[str] = None
    secret_key: Optional[str] = None
    token: Optional[str] = None

    @classmethod
    def from_environment(cls, scrub: bool = False) -> "RootCredentials":
        """Read KMS_ROOT_SECRET_ID/KEY and KMS_ROOT_TOKEN; with scrub, also
        remove them, so processes started from here do not inherit them."""
        read = os.environ.pop if scrub else os.environ.get
        return cls(read(SECRET_ID_VAR, None) or None, read(SECRET_KEY_VAR, None) or None,
                   read(TOKEN_VAR, None) or None)


@dataclass
class Runtime:
    data_dir: str
    store: LogStore
    keys: KeyService
    accounts: AccountService
    clock: Clock
    root_source: str
    # The secrets this start generated, as named in root-credentials.json.
    new_credentials: Optional[Dict[str, str]] = None
    services: Services = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.services = Services(self.keys, self.accounts)

    @property
    def tokens(self) -> TokenService:
        return self.services.tokens


def _check_root_key(store: LogStore, wrapper: Wrapper) -> None:
    """The first start stores a value wrapped under the root key; later
    starts must unwrap it, so a wrong root key is refused up front instead
    of failing on every key later."""
    canary = store.get("meta", "root-canary")
    if canary is None:
        store.commit(lambda: [Op("put", "meta", "root-canary",
                                 wrapper.wrap("canary", "root", 1, CANARY))])
        return
    try:
        wrapper.unwrap("canary", "root", 1, canary)
    except InvalidTag:
        raise RootKeyError("the root key does not match this data directory "
                           "(it was initialised under another root key)") from None


def _tighten(path: str, st: os.stat_result, limit: int, what: str) -> None:
    """Clear the mode bits beyond `limit`; a path of another user is refused,
    since we could neither tighten it nor trust who else writes to it."""
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid != os.geteuid():
        raise DataDirError(f"{what} {path} belongs to uid {st.st_uid}, not to this user "
                           f"(uid {os.geteuid()}); refusing to use it")
    if mode & ~limit:
        os.chmod(path, mode & limit)
        log.warning("%s %s had mode %04o; tightened it to %04o", what, path, mode, mode & limit)


def secure_data_dir(data_dir: str) -> None:
    """Hold the directory to 0700 and its files to 0600 (the README's
    promise), whatever an older version, an archive tool or a umask left.
    root.key is left to FileRootKey, which refuses a wide one outright."""
    try:
        st = os.stat(data_dir)
    except FileNotFoundError:
        return  # nothing to secure; the caller fails or creates it
    if not stat.S_ISDIR(st.st_mode):
        raise DataDirError(f"{data_dir} is not a directory")
    _tighten(data_dir, st, 0o700, "data directory")
    for entry in os.scandir(data_dir):
        if entry.name == "root.key" or not entry.is_file(follow_symlinks=False):
            continue
        entry_st = entry.stat(follow_symlinks=False)
        if stat.S_IMODE(entry_st.st_mode) & ~0o600:
            _tighten(entry.path, entry_st, 0o600, "file")


def open_data_dir(data_dir: str, initialise: bool = True,
                  given: Optional[RootCredentials] = None) -> Runtime:
    """Open (with initialise: create, or finish initialising) a data
    directory. `given` are root secrets from outside, used only where
    something is created; by default they are read from the environment."""
    data_dir = os.path.abspath(data_dir)
    if os.path.exists(data_dir) and not os.path.isdir(data_dir):
        raise DataDirError(f"{data_dir} is not a directory")
    if initialise:
        os.makedirs(data_dir, mode=0o700, exist_ok=True)
    elif not os.path.isdir(data_dir):
        # Only a start creates a data directory; a tool pointed at a wrong
        # path must not leave an empty one there.
        raise DataDirError(f"no data directory at {data_dir} (run kms server once)")
    secure_data_dir(data_dir)
    source = source_for(data_dir)
    if isinstance(source, FileRootKey) and not os.path.exists(source.path):
        if os.path.exists(os.path.join(data_dir, "store.log")):
            raise RootKeyError(f"{source.path} is missing but {data_dir} holds a store; "
                               "without its root key no key can be used")
        if not initialise:
            raise RootKeyError(f"{data_dir} is not initialised (run kms server once)")
        source.create()
    wrapper = Wrapper(source.load())
    store = LogStore(data_dir)
    _check_root_key(store, wrapper)
    clock = Clock()
    # KMS_KEY_LIMIT: kms server --key-limit, for every worker.
    key_limit = int(os.environ.get("KMS_KEY_LIMIT") or DEFAULT_KEY_LIMIT)
    # KMS_SYMMETRIC: kms server --symmetric-algorithm (aes, or sm4 as an SM region).
    symmetric = os.environ.get("KMS_SYMMETRIC") or "aes"
    runtime = Runtime(data_dir, store, KeyService(store, wrapper, clock, key_limit=key_limit,
                                                  symmetric=symmetric),
                      AccountService(store, wrapper), clock, source.description)
    if initialise:
        runtime.new_credentials = _initialise(runtime, given or RootCredentials.from_environment())
    return runtime


def _initialise(runtime: Runtime, given: RootCredentials) -> Dict[str, str]:
    """Create whatever of the root account and its first token is missing,
    in one commit. Returns the secrets generated (empty if none were).

    meta/root-initialised, put in the same record as the first root token,
    tells "never got a token" (a crash under an older version: finish it)
    from "its tokens were revoked" (an operator's choice: KMS_ROOT_TOKEN,
    still in the deployment's environment, must not bring one back)."""
    accounts, tokens = runtime.accounts, runtime.tokens
    path = os.path.join(runtime.data_dir, CREDENTIALS_FILE)
    generated: Dict[str, str] = {}

    def build() -> List[Op]:
        # Decided under the store's lock, so two starts racing on one
        # directory cannot both initialise it.
        generated.clear()
        root = accounts.root()
        if root is not None and runtime.store.get("meta", INITIALISED) is not None:
            if not tokens.has_live(root["secret_id"]):
                log.warning("the root account holds no live token (revoked or expired); "
                            "`kms tokens rotate-root` issues a new one")
            return []
        builds: List[Build] = []
        if root is None:
            if bool(given.secret_id) != bool(given.secret_key):
                raise errors.InvalidParameter(f"set both {SECRET_ID_VAR} and {SECRET_KEY_VAR}, or neither")
            creds, account_build = accounts.prepare("root", "root", given.secret_id, given.secret_key)
            builds.append(account_build)
            root_id = creds["secret_id"]
            if given.secret_id is None:
                generated.update(SecretId=creds["secret_id"], SecretKey=creds["secret_key"])
        else:
            root_id = root["secret_id"]
        # A directory fully initialised by an older version only needs the mark.
        if root is None or not tokens.has_live(root_id):
            issued, token_build = tokens.prepare(root_id, token=given.token)
            builds.append(token_build)
            if given.token is None:
                generated["Token"] = issued["token"]
        ops = build_together(runtime.store, builds)  # every check passed: now save
        if root is None:
            # A file left by an attempt that crashed before its commit names
            # secrets that never took effect.
            _replace_credentials(path, generated)
        elif generated:
            _update_credentials(path, generated, root_id)
        return ops + [Op("put", "meta", INITIALISED, runtime.clock.now_s())]

    runtime.store.commit(build)
    return dict(generated)


def _replace_credentials(path: str, fields: Dict[str, str]) -> None:
    if fields:
        replace_file(path, [(json.dumps(fields, indent=2) + "\n").encode()])
    elif os.path.exists(path):
        os.unlink(path)
        log.warning("removed %s: it named root secrets that were never committed", path)


def _update_credentials(path: str, fields: Dict[str, str], root_id: str) -> None:
    """Set `fields` in the credentials file, keeping what it holds for this
    root account (its SecretKey, say, when only the token is new)."""
    kept: Dict[str, str] = {}
    try:
        with open(path) as f:
            kept = json.load(f)
    except FileNotFoundError:
        pass
    except ValueError:
        log.warning("%s is not JSON; rewriting it", path)
    if not isinstance(kept, dict) or kept.get("SecretId", root_id) != root_id:
        kept = {}  # another (stale) root's secrets
    _replace_credentials(path, {**kept, **fields})


def rotate_root_token(runtime: Runtime) -> Dict[str, Any]:
    """A new root token that replaces every root token, in one commit. If
    root-credentials.json exists, its Token is rewritten first (like at
    first start, so the new token is never lost). Returns {"token",
    "expires", "accessor"}."""
    root = runtime.accounts.root()
    if root is None:
        raise DataDirError(f"{runtime.data_dir} has no root account (start kms server once)")
    path = os.path.join(runtime.data_dir, CREDENTIALS_FILE)
    issued, replace = runtime.tokens.prepare(root["secret_id"], replace=True)

    def build() -> List[Op]:
        ops = build_together(runtime.store, [replace])
        if os.path.exists(path):
            _update_credentials(path, {"Token": issued["token"]}, root["secret_id"])
        return ops

    runtime.store.commit(build)
    return issued


def _open_descriptors() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return SPARE_FDS  # no /proc: assume as many again are open


def descriptor_budget(wanted: int) -> int:
    """Descriptors this process may spend on connections and the accept
    backlog. The soft limit is raised (up to the hard one) far enough for
    `wanted` connections, as Go's runtime does."""
    open_now = _open_descriptors()
    needed = open_now + SPARE_FDS + LISTEN_BACKLOG + wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (OSError, ValueError):
            pass
    if soft == resource.RLIM_INFINITY:
        return needed
    return max(0, soft - open_now - SPARE_FDS)


def bound_connections(wanted: int, budget: int) -> Tuple[int, int]:
    """(connections, listen backlog) that fit in `budget` descriptors: a
    burst can hold a backlog's worth of sockets beyond the admitted
    connections before the excess is refused, so both must fit."""
    backlog = min(LISTEN_BACKLOG, max(1, budget // 4))
    return max(0, min(wanted, budget - backlog)), backlog


class WorkerConfig(uvicorn.Config):
    """uvicorn's Config carrying the root key, when it came from KMS_ROOT_KEY:
    Multiprocess pickles the config to each worker over a pipe, so the key
    reaches the workers without being in their environment. It also
    carries the connection limits (kms.api.protocol reads config.limits)
    and the operator's log level."""

    def __init__(self, *args: Any, root_key: Optional[bytes] = None,
                 limits: Limits = DEFAULT_LIMITS, kms_log_level: str = "warning",
                 **kwargs: Any) -> None:
        self.root_key = root_key
        self.limits = limits
        self.kms_log_level = kms_log_level
        super().__init__(*args, **kwargs)

    def configure_logging(self) -> None:
        super().configure_logging()
        # Workers start in a fresh interpreter: every line they log, uvicorn's
        # included (log_config=None leaves uvicorn's loggers to the root
        # handler), gets the supervisor's format with its time, at the
        # operator's level. Per-request access lines stay off (audit.log has
        # each call).
        logging.basicConfig(level=self.kms_log_level.upper(), format=LOG_FORMAT)

    def load(self) -> None:
        # Runs in the worker, before the app factory opens the data dir.
        if self.root_key is not None:
            hand_over(self.root_key)
            self.root_key = None
        super().load()
        self._fit_connections()

    def _fit_connections(self) -> None:
        # After load(): the app has opened its files, so they are counted.
        wanted = self.limits.max_connections
        fitted, self.backlog = bound_connections(wanted, descriptor_budget(wanted))
        if fitted < wanted:
            log.warning("the descriptor limit (ulimit -n %d) leaves room for %d connections "
                        "per worker, not %d", resource.getrlimit(resource.RLIMIT_NOFILE)[0],
                        fitted, wanted)
        self.limits = dataclasses.replace(self.limits, max_connections=fitted)


def serve(host: str, port: int, workers: int, http: Union[str, type],
          root_key: Optional[bytes], data_dir: str = "", limits: Limits = DEFAULT_LIMITS,
          log_level: str = "warning", keep_alive: int = 5, console: bool = True) -> int:
    """Serve kms.api.app with `workers` worker processes under uvicorn's
    supervisor, also for one worker, so no serving process is the one that
    was started with the caller's environment. Returns the exit status."""
    config = WorkerConfig("kms.api.app:app_from_environment", factory=True, host=host,
                          port=port, workers=workers, log_level=_uvicorn_level(log_level), log_config=None,
                          access_log=False, http=http, root_key=root_key, limits=limits,
                          kms_log_level=log_level, timeout_keep_alive=keep_alive,
                          backlog=LISTEN_BACKLOG,
                          # Nothing reads X-Forwarded-* (audit entries name accounts,
                          # not addresses), and the server need not announce itself.
                          proxy_headers=False, server_header=False)
    sock = config.bind_socket()
    address = _address(sock)
    log.info("listening on http://%s, data directory %s, %d worker%s%s",
             address, data_dir, workers, "" if workers == 1 else "s",
             f"; console at http://{address}/console/" if console else "")
    supervisor = Multiprocess(config, sockets=[sock])
    try:
        supervisor.run()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    # The supervisor stops when a worker cannot start; say so in the status.
    if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
        return STARTUP_FAILURE
    return 0


def _uvicorn_level(level: str) -> str:
    """uvicorn's own INFO lines (its start-up steps in every worker, its
    "running on" line) would repeat what the one start-up line says; they
    show only at debug."""
    return level if level in ("debug", "error") else "warning"


def _address(sock: Any) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
