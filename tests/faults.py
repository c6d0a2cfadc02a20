"""Faults injected into real parts: a TCP proxy in front of a real server that goes away at a
chosen request, as a server that crashes or a network that drops would."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

from support import free_port

__all__ = ["CuttingProxy"]

_METHODS = (b"GET ", b"POST ", b"PUT ", b"PATCH ", b"DELETE ", b"HEAD ")


@dataclass
class CuttingProxy:
    """Forwards 127.0.0.1:port to `target_port` until the cut, then refuses every connection.

    The cut comes at the request whose request line contains the last of `at`, once requests
    containing the others were seen in that order: before it reaches the server (after=False),
    or once it was answered, at the next request (after=True).
    """

    target_port: int
    at: tuple[bytes, ...]
    after: bool = False
    port: int = field(default_factory=free_port)
    cut: threading.Event = field(default_factory=threading.Event)
    requests: list[bytes] = field(default_factory=list)  # request lines seen, in order

    def __post_init__(self) -> None:
        self._armed = False
        self._matched = 0  # how many of `at` were seen, in order
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._cut()

    def _cut(self) -> None:
        self.cut.set()
        with self._lock:
            sockets, self._sockets = [self._listener, *self._sockets], []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self) -> None:
        while not self.cut.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                if self.cut.is_set():
                    client.close()
                    server.close()
                    return
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if upstream and chunk.startswith(_METHODS) and self._cuts_at(chunk):
                    self._cut()
                    return
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _cuts_at(self, chunk: bytes) -> bool:
        """Whether this request, the start of `chunk`, is where the server goes away."""
        line = chunk.split(b"\r\n", 1)[0]
        with self._lock:
            self.requests.append(line)
            if self._armed:
                return True
            if self.at[self._matched] in line:
                self._matched += 1
                if self._matched == len(self.at):
                    if not self.after:
                        return True
                    self._armed = True
        return False
