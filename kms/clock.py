"""The service's time source. Tests fast-forward it (rotation, import expiry,
deletion windows) instead of sleeping; a server only accepts such shifts when
started with its explicit test flag, and keeps the offset in the store so
every worker agrees on the time."""
import time


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def now_s(self) -> int:
        return int(self.now())
