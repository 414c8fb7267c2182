"""The node: one instance of a service on the mesh, as a Python object.

Everything it promises is libchorus's: this module only turns Python calls
into calls of chorus.h, and the library's callbacks into Python handlers.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, TypeVar

from . import _lib
from .errors import (EINTERRUPTED, EINVAL, EREMOTE, ESTATE, Error, HandlerError, RemoteError,
                     check, error)
from .payload import decode_at, encode

log = logging.getLogger("chorus")

#   How long the loop waits on the node's descriptor at most, in seconds: a
#   signal that lands on one of the library's threads wakes no poll, and
#   Python runs its handler at the latest when the wait ends
_WAKE = 0.1

_DURABILITY = {"process": 0, "fsync": 1}

CommandHandler = Callable[[Any, "Context"], Any]
EventHandler = Callable[["Event"], Any]
ReplyCallback = Callable[[Any, Optional[Error]], None]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Context:
    """What a command handler knows of the command besides its payload."""

    command: str            #: the command's name
    id: str                 #: the command's id
    idempotency: str        #: its idempotency key (the id when the sender gave none)
    correlation: str        #: the correlation id it carries
    causation: Optional[str]  #: the id of the message that caused it
    sender: str             #: the sender's service
    deadline: int           #: when the sender gives up, ms since the epoch (0: never)
    attempt: int            #: 1 for the first delivery, more for a retry


@dataclass(frozen=True)
class Event:
    """An event handed to an event handler."""

    topic: str
    key: Optional[str]
    payload: Any            #: the payload as a Python value (bytes with raw=True)
    id: str
    correlation: str
    causation: Optional[str]
    service: str            #: the publisher's service
    instance: str           #: the publisher's instance
    seq: int                #: the publisher's sequence number
    timestamp: int          #: when it was published, ms since the epoch
    attempt: int            #: 1 for the first delivery, more for a redelivery


def _s(value: Optional[bytes]) -> str:
    return _lib.text(value) or ""


class Node:
    """One instance of a service on a Chorus mesh.

    Configure it with keyword arguments, register handlers with the
    command() and on() decorators, then run() it (or use it in a with
    block, which starts it and closes it at the end)::

        with chorus.Node("ocr", seeds=["tcp://127.0.0.1:5670"], store="ocr.store") as node:
            @node.command("ocr_page")
            def ocr_page(payload, ctx):
                return {"text": "..."}
            node.run()

    service is the service's name, and so its group; seeds the inbox
    endpoints of peers to meet first (default: $CHORUS_SEEDS,
    comma-separated); store the directory of its durable store (default: a
    temporary store, deleted with the node); listen the inbox endpoint to
    bind (default tcp://127.0.0.1:0); advertise the HOST[:PORT] peers are
    told to reach it at (default $CHORUS_ADVERTISE, else found); mesh the mesh's name (default
    $CHORUS_MESH, else "default"); beacon a UDP discovery port (0: off);
    durability "process" (a publish survives a crash of the process) or
    "fsync" (of the machine); start_earliest makes a new group start at the
    earliest retained event; cert and trust join a secure mesh. inline runs
    the node's engine in this thread, inside run() and send(), instead of a
    thread of its own (chorus_node_set_inline): nothing crosses between
    threads on the way to a handler, so round trips are shorter, but a long
    handler holds the engine too (peers see the node stall, and its
    commands wait).
    A bad value raises chorus.InvalidArgument saying which.

    A node belongs to the thread that made it: call it, and run it, from
    that thread only. Handlers run in that thread, inside run() or send().
    """

    def __init__(self, service: str, seeds: Optional[Iterable[str]] = None,
                 store: Optional[str] = None, listen: Optional[str] = None,
                 advertise: Optional[str] = None, mesh: Optional[str] = None,
                 beacon: int = 0, durability: str = "process",
                 start_earliest: bool = False, cert: Optional[str] = None,
                 trust: Optional[str] = None, verbose: bool = False,
                 inline: bool = False) -> None:
        self._node: Optional[int] = None
        self._inline = bool(inline)
        self._fds = (ctypes.c_int * 16)()
        self._started = False
        self._stopping = False
        self._in_handler = 0
        self._raise_after: Optional[BaseException] = None
        self._keep: List[Any] = []      # the C callbacks, alive as long as the node
        self._pending: Dict[int, ReplyCallback] = {}
        self._next_token = 1
        self._thread = threading.get_ident()
        handle = _lib.lib.chorus_node_new(_lib.cstr(service))
        if not handle:
            check(_lib.lib.chorus_errno() or EINVAL, None, f"service {service!r}")
        self._node = handle
        self._reply_fn = _lib.REPLY_FN(self._on_reply)
        try:
            if seeds is None:
                seeds = [seed for seed in os.environ.get("CHORUS_SEEDS", "").split(",") if seed]
            elif isinstance(seeds, str):
                raise error(EINVAL, "seeds: give a list of endpoints, not one str")
            for seed in seeds:
                self._check(_lib.lib.chorus_node_add_seed(handle, _lib.cstr(seed)),
                            f"seed {seed!r}")
            if store is not None:
                self._check(_lib.lib.chorus_node_set_store(handle, _lib.cstr(os.fspath(store))),
                            f"store {store!r}")
            if listen is not None:
                self._check(_lib.lib.chorus_node_set_listen(handle, _lib.cstr(listen)),
                            f"listen {listen!r}")
            if advertise is not None:
                self._check(_lib.lib.chorus_node_set_advertise(handle, _lib.cstr(advertise)),
                            f"advertise {advertise!r}")
            if mesh is not None:
                self._check(_lib.lib.chorus_node_set_mesh(handle, _lib.cstr(mesh)),
                            f"mesh {mesh!r}")
            if beacon:
                self._check(_lib.lib.chorus_node_set_beacon(handle, int(beacon)),
                            f"beacon {beacon!r}")
            if durability not in _DURABILITY:
                raise error(EINVAL, f"durability {durability!r}: give 'process' or 'fsync'")
            self._check(_lib.lib.chorus_node_set_durability(handle, _DURABILITY[durability]))
            if start_earliest:
                self._check(_lib.lib.chorus_node_set_start_earliest(handle, True))
            if cert is not None or trust is not None:
                self._check(_lib.lib.chorus_node_set_security(
                    handle, _lib.cstr(cert and os.fspath(cert)),
                    _lib.cstr(trust and os.fspath(trust))), "security")
            if verbose:
                _lib.lib.chorus_node_set_verbose(handle, True)
            if inline:
                self._check(_lib.lib.chorus_node_set_inline(handle, True), "inline")
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------
    #   Life

    def start(self) -> "Node":
        """Start the node: open the store, bind, meet the seeds. run(),
        publish(), send() and a with block start it when it has not
        started. Raises chorus.StoreError (the store is in use, ...),
        chorus.Corrupt, chorus.NetworkError, ... with the library's reason."""
        node = self._handle()
        if not self._started:
            self._check(_lib.lib.chorus_node_start(node), "start")
            self._started = True
        return self

    def close(self) -> None:
        """Stop the node (saying goodbye to its peers), close its store and
        free it. Unhandled work is left for redelivery; each send_async()
        still waiting gets chorus.Interrupted. Safe to call twice."""
        if self._node is not None:
            node = ctypes.c_void_p(self._node)
            self._node = None
            self._in_handler += 1       # replies to pending sends come now
            try:
                _lib.lib.chorus_node_destroy(ctypes.byref(node))
            finally:
                self._in_handler -= 1

    def __enter__(self) -> "Node":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    @property
    def closed(self) -> bool:
        """True once close() ran."""
        return self._node is None

    @property
    def service(self) -> str:
        """The node's service, and group."""
        return _s(_lib.lib.chorus_node_service(self._handle()))

    @property
    def instance(self) -> str:
        """The node's instance id (after start; kept in its store)."""
        return _s(_lib.lib.chorus_node_instance(self._handle()))

    @property
    def endpoint(self) -> str:
        """The inbox endpoint the node bound (after start): a seed for others."""
        return _s(_lib.lib.chorus_node_endpoint(self._handle()))

    def counter(self, name: str) -> int:
        """A counter of the node ("handled", "duplicates", ...: see chorus.h)."""
        return int(_lib.lib.chorus_node_counter(self._handle(), _lib.cstr(name)))

    def unacked(self) -> int:
        """Deliveries of this node's events to known groups not yet
        acknowledged (one per event and group)."""
        return int(self._check(_lib.lib.chorus_node_unacked(self._handle()), "unacked"))

    # ------------------------------------------------------------------
    #   Handlers

    def command(self, name: str, raw: bool = False) -> Callable[[F], F]:
        """Decorator: handle the command `name` with fn(payload, ctx).

        The handler gets the payload as a Python value (bytes as they came
        with raw=True) and a Context; what it returns is the reply's payload
        (None: no payload; bytes as they are with raw=True). To answer with
        an error it raises chorus.Retryable(code, message) or
        chorus.Permanent(code, message). Any other exception becomes the
        retryable error "exception" whose message is "TYPE: TEXT", logged
        with its traceback on the "chorus" logger, and the node goes on. A
        payload that is not one well-formed value gets the permanent error
        "bad-payload" without running the handler; a return value that is
        no payload, the permanent error "bad-reply".
        """
        def register(fn: F) -> F:
            def trampoline(node: int, command: int, reply: int, arg: int) -> None:
                self._run_command(fn, raw, command, reply)
            c_fn = _lib.COMMAND_FN(trampoline)
            self._check(_lib.lib.chorus_node_handle(self._handle(), _lib.cstr(name), c_fn, None),
                        f"command {name!r}")
            self._keep.append(c_fn)
            return fn
        return register

    def on(self, prefix: str, group: Optional[str] = None,
           raw: bool = False) -> Callable[[F], F]:
        """Decorator: subscribe the node's group to every topic starting
        with prefix ("" for all), and handle each event with fn(event).

        The group is the node's service: each event goes to one instance of
        the group, and with a store the group's place is durable. group,
        when given, must be that service (a node is a member of one group;
        make a Node per group). A handler that returns has handled the
        event: it is acknowledged and never run again on this store. One
        that raises chorus.Retryable, or any exception but chorus.Permanent,
        rejects it: it comes again after a backoff (an unexpected exception
        is logged with its traceback). chorus.Permanent acknowledges it all
        the same, with a warning, as no retry can help; so is an event whose
        payload is not one well-formed value (use raw=True to get bytes).
        """
        if group is not None and group != self.service_name:
            raise error(EINVAL, f"group {group!r}: this node's group is its service "
                                f"{self.service_name!r}; make a Node({group!r}) for that group")

        def register(fn: F) -> F:
            def trampoline(node: int, event: int, arg: int) -> int:
                return self._run_event(fn, raw, event)
            c_fn = _lib.EVENT_FN(trampoline)
            self._check(_lib.lib.chorus_node_subscribe(self._handle(), _lib.cstr(prefix), c_fn,
                                                       None), f"prefix {prefix!r}")
            self._keep.append(c_fn)
            return fn
        return register

    @property
    def service_name(self) -> str:
        """The service the node was made for (also before start)."""
        return _s(_lib.lib.chorus_node_service(self._handle()))

    # ------------------------------------------------------------------
    #   Running

    def run(self, timeout: Optional[float] = None) -> None:
        """Run handlers as work comes, until stop(), SIGTERM, Ctrl-C or
        timeout seconds (None: no end).

        stop() (from a handler, say) and SIGTERM make run() return once the
        running handler returns; the node stays open. Ctrl-C (SIGINT, as
        KeyboardInterrupt) closes the node and then propagates: a program
        that does not catch it exits with the status of SIGINT (130 in a
        shell), its store closed. run() takes SIGTERM only in the main thread
        and while SIGTERM has its default action.
        """
        self.start()
        self._not_in_handler("run")
        self._stopping = False
        previous = None
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL):
            previous = signal.signal(signal.SIGTERM, lambda *_: self.stop())
        try:
            clock = _Clock(timeout)
            while not self._stopping and not clock.over():
                self._dispatch_and_wait(clock.left(_WAKE))
        except KeyboardInterrupt:
            self.close()
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def stop(self) -> None:
        """Make run() return after the running handler; safe in a handler and
        in a signal handler."""
        self._stopping = True

    # ------------------------------------------------------------------
    #   Publishing and sending

    def publish(self, topic: str, payload: Any = None, key: Optional[str] = None,
                correlation: Optional[str] = None, raw: bool = False) -> str:
        """Publish an event; returns its id once it is durable in the store.

        key keeps order among events of the same key. Published from a
        handler, the event carries the handled message's correlation id and
        the message as its cause. raw=True sends bytes as they are. Raises
        chorus.InvalidArgument (bad topic, key or payload), chorus.TooBig,
        chorus.Full (retention), chorus.StoreError, chorus.Forbidden.
        """
        node = self._handle()
        self.start()
        data = self._payload(payload, raw)
        out = ctypes.create_string_buffer(65)
        self._check(_lib.lib.chorus_node_publish_traced(
            node, _lib.cstr(topic), _lib.cstr(key), data, len(data) if data else 0,
            _lib.cstr(correlation), out), f"publish {topic!r}")
        return out.value.decode("ascii")

    def send_async(self, service: str, command: str, payload: Any = None,
                   callback: Optional[ReplyCallback] = None, timeout: float = 30.0,
                   idempotency: Optional[str] = None, correlation: Optional[str] = None,
                   raw: bool = False) -> None:
        """Send a command to one live instance of service without waiting:
        callback(payload, None) gets the reply's payload, or callback(None,
        error) its failure (as send() would raise it), later, in this thread,
        from run() or send(); exactly once, with chorus.Interrupted when the
        node is closed first. This is how a handler calls another service."""
        node = self._handle()
        self.start()
        if timeout <= 0:
            raise error(EINVAL, f"timeout {timeout!r}: give a positive number of seconds")
        data = self._payload(payload, raw)
        token = self._next_token
        self._next_token += 1
        self._pending[token] = _Pending(callback or (lambda *_: None), service, command, raw,
                                        timeout)
        rc = _lib.lib.chorus_node_send_traced(
            node, _lib.cstr(service), _lib.cstr(command), data, len(data) if data else 0,
            max(1, int(timeout * 1000)), _lib.cstr(idempotency), _lib.cstr(correlation),
            self._reply_fn, ctypes.c_void_p(token))
        if rc < 0:
            del self._pending[token]
            self._check(rc, f"send {service}.{command}")

    def send(self, service: str, command: str, payload: Any = None, timeout: float = 30.0,
             idempotency: Optional[str] = None, correlation: Optional[str] = None,
             raw: bool = False) -> Any:
        """Send a command to one live instance of service and wait for the
        reply; returns its payload as a Python value (bytes with raw=True).

        While no instance is alive the command waits for one. Raises
        chorus.RemoteError (the handler answered with an error: remote_code,
        message, retryable), chorus.Timeout (no reply within timeout
        seconds, also when no instance came), chorus.Unknown (the service
        does not handle the command), chorus.Forbidden, chorus.Malformed (a
        reply that is no payload). Handlers of this node run while it waits.
        A handler cannot wait: it uses send_async().
        """
        self._not_in_handler("send", "; a handler uses send_async()")
        box: List[Any] = []
        self.send_async(service, command, payload, lambda *result: box.append(result), timeout,
                        idempotency, correlation, raw)
        while not box:
            self._dispatch_and_wait(_WAKE, lambda: bool(box))
        value, failure = box[0]
        if failure is not None:
            raise failure
        return value

    # ------------------------------------------------------------------
    #   Inside

    def _handle(self) -> int:
        if self._node is None:
            raise error(ESTATE, "the node is closed")
        return self._node

    def _check(self, rc: int, what: str = "") -> int:
        return check(rc, self._node, what)

    def _not_in_handler(self, what: str, hint: str = "") -> None:
        if self._in_handler:
            raise error(ESTATE, f"{what} from inside a handler would block the node's "
                                f"thread{hint}")

    @staticmethod
    def _payload(payload: Any, raw: bool) -> Optional[bytes]:
        if raw:
            if payload is not None and not isinstance(payload, (bytes, bytearray)):
                raise error(EINVAL, f"payload: raw=True takes bytes, not a "
                                    f"{type(payload).__name__}")
            return bytes(payload) if payload else None
        return encode(payload)

    def _dispatch_and_wait(self, wait: float, done: Callable[[], bool] = lambda: False) -> None:
        """Runs the work that is ready, then waits for more at most wait
        seconds, unless the node is stopping or done() says so."""
        node = self._handle()
        self._check(_lib.lib.chorus_node_dispatch(node), "dispatch")
        self._raise_pending()
        if self._stopping or done():
            return
        #   poll, not select: a busy process may hand out descriptors past
        #   select's limit (1024)
        waiter = select.poll()
        if not self._inline:
            waiter.register(self._check(_lib.lib.chorus_node_fd(node)), select.POLLIN)
            waiter.poll(wait * 1000)
            return
        #   Run inline, the engine's descriptors, and how long it may wait
        #   before its next timer (after the dispatch, the last call made)
        timeout = ctypes.c_int(-1)
        count = self._check(_lib.lib.chorus_node_pollfds(node, self._fds, len(self._fds),
                                                         ctypes.byref(timeout)))
        while count > len(self._fds):       # room for them all, and ask again
            self._fds = (ctypes.c_int * count)()
            count = self._check(_lib.lib.chorus_node_pollfds(node, self._fds, len(self._fds),
                                                             ctypes.byref(timeout)))
        if timeout.value >= 0:
            wait = min(wait, timeout.value / 1000)
        if wait > 0:
            for fd in self._fds[:count]:
                waiter.register(fd, select.POLLIN)
            waiter.poll(wait * 1000)

    def _raise_pending(self) -> None:
        exc, self._raise_after = self._raise_after, None
        if exc is not None:
            raise exc

    def _run_command(self, fn: CommandHandler, raw: bool, command: int, reply: int) -> None:
        lib = _lib.lib
        ctx = Context(
            command=_s(lib.chorus_command_name(command)), id=_s(lib.chorus_command_id(command)),
            idempotency=_s(lib.chorus_command_idempotency(command)),
            correlation=_s(lib.chorus_command_correlation(command)),
            causation=_lib.text(lib.chorus_command_causation(command)),
            sender=_s(lib.chorus_command_sender(command)),
            deadline=int(lib.chorus_command_deadline(command)),
            attempt=int(lib.chorus_command_attempt(command)))
        address, size = lib.chorus_command_payload(command), lib.chorus_command_size(command)
        try:
            payload = ctypes.string_at(address, size) if raw and address else (
                None if raw else decode_at(address, size))
        except Error as exc:
            log.warning("command %s %s: %s", ctx.command, ctx.id, exc.reason)
            lib.chorus_reply_set_error(reply, b"bad-payload", _lib.cstr(exc.reason), False)
            return
        self._in_handler += 1
        try:
            result = fn(payload, ctx)
        except HandlerError as exc:
            lib.chorus_reply_set_error(reply, _lib.cstr(exc.code), _lib.cstr(exc.message),
                                       exc.retryable)
            return
        except Exception as exc:
            self._fail(reply, ctx, exc)
            return
        except BaseException as exc:
            #   Ctrl-C or exit inside a handler: the command may be tried again
            lib.chorus_reply_set_error(reply, b"interrupted", _lib.cstr(type(exc).__name__),
                                       True)
            self._raise_after = exc
            return
        finally:
            self._in_handler -= 1
        try:
            data = self._payload(result, raw)
        except Error as exc:
            log.warning("command %s: the handler returned no payload: %s", ctx.command,
                        exc.reason)
            lib.chorus_reply_set_error(reply, b"bad-reply", _lib.cstr(exc.reason), False)
            return
        if data is not None:
            rc = lib.chorus_reply_set_payload(reply, data, len(data))
            if rc < 0:
                reason = f"the reply's payload: {_lib.text(lib.chorus_strerror(rc))}"
                lib.chorus_reply_set_error(reply, b"bad-reply", _lib.cstr(reason), False)

    @staticmethod
    def _fail(reply: int, ctx: Context, exc: BaseException) -> None:
        log.warning("command %s %s: the handler raised", ctx.command, ctx.id, exc_info=exc)
        message = f"{type(exc).__name__}: {exc}"
        _lib.lib.chorus_reply_set_error(reply, b"exception", _lib.cstr(message), True)

    def _run_event(self, fn: EventHandler, raw: bool, event: int) -> int:
        lib = _lib.lib
        address, size = lib.chorus_event_payload(event), lib.chorus_event_size(event)
        topic, event_id = _s(lib.chorus_event_topic(event)), _s(lib.chorus_event_id(event))
        try:
            payload = ctypes.string_at(address, size) if raw and address else (
                None if raw else decode_at(address, size))
        except Error as exc:
            log.warning("event %s %s acknowledged unhandled: %s", topic, event_id, exc.reason)
            return 0
        item = Event(topic=topic, key=_lib.text(lib.chorus_event_key(event)), payload=payload,
                     id=event_id, correlation=_s(lib.chorus_event_correlation(event)),
                     causation=_lib.text(lib.chorus_event_causation(event)),
                     service=_s(lib.chorus_event_service(event)),
                     instance=_s(lib.chorus_event_instance(event)),
                     seq=int(lib.chorus_event_seq(event)),
                     timestamp=int(lib.chorus_event_timestamp(event)),
                     attempt=int(lib.chorus_event_attempt(event)))
        self._in_handler += 1
        try:
            fn(item)
            return 0
        except HandlerError as exc:
            if exc.retryable:
                return 1
            log.warning("event %s %s acknowledged after a permanent error: %s", topic,
                        event_id, exc)
            return 0
        except Exception as exc:
            log.warning("event %s %s rejected: the handler raised", topic, event_id,
                        exc_info=exc)
            return 1
        except BaseException as exc:
            self._raise_after = exc
            return 1
        finally:
            self._in_handler -= 1

    def _on_reply(self, node: int, reply: int, arg: Optional[int]) -> None:
        pending = self._pending.pop(arg or 0, None)
        if pending is None:
            return
        lib = _lib.lib
        status = lib.chorus_reply_status(reply)
        value: Any = None
        failure: Optional[Error] = None
        if status == 0:
            address, size = lib.chorus_reply_payload(reply), lib.chorus_reply_size(reply)
            try:
                value = ctypes.string_at(address, size) if pending.raw and address else (
                    None if pending.raw else decode_at(address, size))
            except Error as exc:
                failure = exc
        elif status == EREMOTE:
            failure = RemoteError(_s(lib.chorus_reply_code(reply)),
                                  _s(lib.chorus_reply_message(reply)),
                                  bool(lib.chorus_reply_retryable(reply)))
        else:
            detail = _lib.text(lib.chorus_reply_message(reply))
            what = f"{pending.service}.{pending.command}"
            if status == EINTERRUPTED and not detail:
                detail = "the node was closed before the reply came"
            elif not detail:
                detail = f"no reply within {pending.timeout:g} s"
            failure = error(status, f"{what}: {detail}")
        try:
            pending.callback(value, failure)
        except BaseException as exc:    # a callback's failure surfaces from run() or send()
            self._raise_after = exc


@dataclass
class _Pending:
    callback: ReplyCallback
    service: str
    command: str
    raw: bool
    timeout: float


class _Clock:
    """A deadline in seconds from now (None: none), on the monotonic clock."""

    def __init__(self, timeout: Optional[float]) -> None:
        import time
        self._now = time.monotonic
        self._end = None if timeout is None else time.monotonic() + timeout

    def over(self) -> bool:
        return self._end is not None and self._now() >= self._end

    def left(self, most: float) -> float:
        return most if self._end is None else max(0.0, min(most, self._end - self._now()))
