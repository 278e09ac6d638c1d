"""C-ECHO (PS3.4 A, Verification): is the node there, does it accept us, how fast does it answer."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..errors import NetworkError
from .associate import application_entity, associate
from .nodes import LocalNode, RemoteNode
from .wire import VERIFICATION


@dataclass
class EchoResult:
    """``ok``: the node answered Success; ``message``: one sentence naming the node (the reason on failure);
    ``seconds``: from opening the association to the answer (0 when none came)."""

    ok: bool
    message: str
    seconds: float = 0.0

    def summary(self) -> str:
        """What the CLI prints (stdout when ok, else stderr after "dicomtui: ")."""
        return self.message


def echo(node: RemoteNode, local: LocalNode | None = None) -> EchoResult:
    """C-ECHO the node: ok, or the plain-words reason it failed. Never raises NetworkError."""
    local = local or LocalNode()
    ae = application_entity(local, node)
    ae.add_requested_context(VERIFICATION)
    start = time.monotonic()
    try:
        assoc = associate(ae, node)
    except NetworkError as exc:
        return EchoResult(False, str(exc))
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    seconds = time.monotonic() - start
    if status is None or "Status" not in status:
        return EchoResult(False, f"{node.address} did not answer the C-ECHO (timeout or abort)", seconds)
    if status.Status != 0:
        return EchoResult(False, f"{node.address} answered the C-ECHO with status 0x{status.Status:04X}", seconds)
    return EchoResult(True, f"{node.address} answers C-ECHO ({seconds * 1000:.0f} ms)", seconds)
