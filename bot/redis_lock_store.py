"""Rasa's Redis lock store with two fixes for replicas that die or race: owner leases and atomic tickets.

Rasa serialises each conversation's messages with a ticket lock (rasa/core/lock.py
`TicketLock`). Its `RedisLockStore` has two gaps when several replicas share it:

- **A replica killed while it handles a message blocks that customer for the whole
  lock lifetime** (TICKET_LOCK_LIFETIME, default 60 s): its ticket is never given
  back, so the customer's next messages wait, and time out on the way.
  Here every process holds a *lease*, a Redis key refreshed every `lease_s / 4`
  seconds by a thread and expiring after `lease_s` (default 5 s), and each ticket
  records the lease of the process that took it. A ticket whose owner's lease has
  expired, and stays missing for another `lease_s / 2` (a Redis restart loses every
  lease until its process renews it), is treated as given back. A live process keeps its tickets however long
  a message takes (still bounded by the lock lifetime, as in Rasa).
- **Issuing a ticket is a read-modify-write without a transaction**, so two replicas
  receiving one customer's messages at the same moment can draw the same ticket
  number and both run. Here every change of a lock runs in a Redis transaction
  (WATCH/MULTI, retried on conflict).

Keys (under `key_prefix`, as Rasa's): the lock (Rasa's JSON, now expiring with its
last ticket instead of never), `owners:<conversation>` (ticket number -> owner) and
`lease:<owner>`. Tickets without a recorded owner (taken by stock Rasa during a
rolling upgrade) expire as in Rasa.

endpoints.yml:

    lock_store:
      type: bot.redis_lock_store.RedisLockStore
      url: 127.0.0.1
      port: 6379
      db: 1
      key_prefix: kefu
      lease_s: 5          # a killed replica's conversations wait at most this long
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any, Callable, Dict, Optional, Tuple

import redis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError
from rasa.core.lock_store import RedisLockStore as RasaRedisLockStore

from bot.metrics import LOCK_TICKETS_RECLAIMED

logger = logging.getLogger(__name__)

DEFAULT_LEASE_S = 5.0
# Rasa polls a busy conversation's lock every second; one Redis round trip is cheap to poll more often.
DEFAULT_WAIT_S = 0.1
_ENDPOINT_KEYS = ("port", "db", "username", "password", "use_ssl", "ssl_certfile", "ssl_keyfile", "ssl_ca_certs",
                  "key_prefix", "socket_timeout")


class RedisLockStore(RasaRedisLockStore):
    """Rasa's `RedisLockStore`; a dead process's tickets are given back after `lease_s`, tickets are issued atomically."""

    def __init__(self, endpoint_config: Any = None, host: Optional[str] = None, lease_s: Optional[float] = None,
                 **kwargs: Any) -> None:
        options = dict(getattr(endpoint_config, "kwargs", None) or {})
        options.update(kwargs)
        self.lease_s = float(lease_s if lease_s is not None else options.pop("lease_s", DEFAULT_LEASE_S))
        options.pop("lease_s", None)
        if self.lease_s <= 0:
            raise ValueError(f"lock_store lease_s must be positive, got {self.lease_s}")
        unknown = sorted(set(options) - set(_ENDPOINT_KEYS))
        if unknown:
            raise ValueError(f"lock_store: unknown option(s) {', '.join(unknown)}; known: lease_s, url, {', '.join(_ENDPOINT_KEYS)}")
        super().__init__(host=host or getattr(endpoint_config, "url", None) or "localhost", **options)
        self._owner = ""
        self._pid = -1
        self._stop = threading.Event()
        self._lease_ok = True
        self._missing_since: Dict[str, float] = {}

    # -- keys ------------------------------------------------------------------------------------

    def _lock_key(self, conversation_id: str) -> str:
        return self.key_prefix + conversation_id

    def _owners_key(self, conversation_id: str) -> str:
        return self.key_prefix + "owners:" + conversation_id

    def _lease_key(self, owner: str) -> str:
        return self.key_prefix + "lease:" + owner

    # -- this process's lease ----------------------------------------------------------------------

    @property
    def owner(self) -> str:
        """This process's owner id; a forked worker gets its own (and its own lease thread)."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._owner = f"{socket.gethostname()}:{self._pid}:{uuid.uuid4().hex[:8]}"
            self._renew_lease()  # before the first ticket is visible to others
            threading.Thread(target=self._keep_lease, args=(self._owner,), name="kefu-lock-lease", daemon=True).start()
        return self._owner

    def _renew_lease(self) -> None:
        try:
            self.red.set(self._lease_key(self._owner), "1", px=int(self.lease_s * 1000))
            if not self._lease_ok:
                logger.info("lock store: lease renewed again")
            self._lease_ok = True
        except redis.RedisError as e:
            if self._lease_ok:  # once per outage, not every renewal
                logger.warning("lock store: cannot renew this process's lease (%s); retrying", e)
            self._lease_ok = False

    def _keep_lease(self, owner: str) -> None:
        while not self._stop.wait(self.lease_s / 4):
            if owner != self._owner or self._pid != os.getpid():
                return  # a forked child's copy of the thread object; the child runs its own
            self._renew_lease()

    def close(self) -> None:
        """Stop renewing the lease (tests; a process that exits simply lets it expire)."""
        self._stop.set()

    # -- reading a lock: tickets of dead owners are given back ------------------------------------

    def _dead(self, owners: list, reader: Any) -> set:
        """The owners among `owners` whose lease this process has seen missing for half a lease period.

        One missing read is not enough: after a Redis restart (or failover) every lease is gone
        until its process renews it, within `lease_s / 4`; a dead process never does.
        """
        now = time.monotonic()
        dead = set()
        for owner, lease in zip(owners, reader.mget([self._lease_key(o) for o in owners])):
            if lease is not None:
                self._missing_since.pop(owner, None)
            elif now - self._missing_since.setdefault(owner, now) >= self.lease_s / 2:
                dead.add(owner)
        for owner, since in list(self._missing_since.items()):
            if now - since > 60 * self.lease_s:  # long gone: forget it
                del self._missing_since[owner]
        return dead

    def _live(self, lock: TicketLock, owners: Dict[bytes, bytes], reader: Any) -> TicketLock:
        """`lock` without the tickets whose recorded owner has died (its lease expired and was not renewed)."""
        owned = {int(number): owner.decode() for number, owner in owners.items()}
        candidates = sorted({owned[t.number] for t in lock.tickets if t.number in owned})
        if not candidates:
            return lock
        dead = self._dead(candidates, reader)
        for ticket in list(lock.tickets):
            if owned.get(ticket.number) in dead:
                lock.tickets.remove(ticket)
                logger.warning("lock store: gave back a ticket of %s, whose lease expired (the process died)", owned[ticket.number])
                LOCK_TICKETS_RECLAIMED.inc()
        return lock

    def get_lock(self, conversation_id: str) -> Optional[TicketLock]:
        with self.red.pipeline(transaction=False) as pipe:  # one round trip
            raw, owners = pipe.get(self._lock_key(conversation_id)).hgetall(self._owners_key(conversation_id)).execute()
        if not raw:
            return None
        return self._live(TicketLock.from_dict(json.loads(raw)), owners, self.red)

    # -- changing a lock: one transaction each ----------------------------------------------------

    def _change(self, conversation_id: str, change: Callable[[TicketLock], Tuple[Any, Optional[int]]]) -> Any:
        """Read the lock, apply `change` (returns (result, ticket it issued or None)), write it back atomically."""
        lock_key, owners_key = self._lock_key(conversation_id), self._owners_key(conversation_id)
        with self.red.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(lock_key, owners_key)
                    raw, owners = pipe.get(lock_key), pipe.hgetall(owners_key)
                    lock = self._live(TicketLock.from_dict(json.loads(raw)), owners, pipe) if raw else self.create_lock(conversation_id)
                    result, issued = change(lock)
                    lock.remove_expired_tickets()
                    keep = {t.number for t in lock.tickets}
                    pipe.multi()
                    if lock.tickets:
                        expires = max(t.expires for t in lock.tickets)
                        pipe.set(lock_key, lock.dumps())
                        pipe.expireat(lock_key, int(expires) + 1)
                        stale = [n for n in owners if int(n) not in keep]
                        if stale:
                            pipe.hdel(owners_key, *stale)
                        if issued is not None:
                            pipe.hset(owners_key, str(issued), self.owner)
                        pipe.expireat(owners_key, int(expires) + 1)
                    else:
                        pipe.delete(lock_key, owners_key)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue  # another process changed this conversation's lock meanwhile: read it again

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        _ = self.owner  # the lease exists before the ticket does
        try:
            return self._change(conversation_id, _issue(lock_lifetime))
        except redis.RedisError as e:
            raise LockError(f"Error while acquiring lock. Error:\n{e}") from e

    def update_lock(self, conversation_id: str) -> None:
        self._change(conversation_id, lambda lock: (None, None))

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        self._change(conversation_id, lambda lock: (lock.remove_ticket_for(ticket_number), None))

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Finish serving `ticket_number`; the lock goes when no one else waits (one transaction)."""
        self.finish_serving(conversation_id, ticket_number)

    def lock(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME, wait_time_in_seconds: float = DEFAULT_WAIT_S):
        """Rasa's ticket lock, polled every `wait_time_in_seconds` (Rasa's default: 1 s) while another holds it."""
        return super().lock(conversation_id, lock_lifetime, wait_time_in_seconds)



def _issue(lock_lifetime: float) -> Callable[[TicketLock], Tuple[int, int]]:
    def change(lock: TicketLock) -> Tuple[int, int]:
        number = lock.issue_ticket(lock_lifetime)
        return number, number

    return change
