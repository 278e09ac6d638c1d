"""The network screen's listener panel (issue 20): our own listener (l starts and stops it), or the listener that
serves this database from another process (a service: :mod:`dicomtui.core.net.identity`), which the screen does not
duplicate; under it what ``dicomtui status`` says about receiving (:func:`dicomtui.core.status.status`: received
today, free disk against the floor, refusing or not; open associations and pending forwards where it has them),
read in a thread worker every ``STATUS_EVERY`` seconds; and the associations of our own listener."""

from __future__ import annotations

import os

from textual import work
from textual.widgets import DataTable, Static

from ...core.errors import DicomtuiError
from ...core.plural import counted
from .network_text import StatusRead, other_listeners, service_text, status_line

STATUS_EVERY = 3.0  # seconds between two reads of the status (it counts the instances received today: a query)


class ListenerPanel:
    """Mixed into the network screen, which has ``#listener-status``, ``#associations``, ``nodes``, ``status``
    and ``say``."""

    # ---- listener --------------------------------------------------------------------------------------------

    def action_listener(self) -> None:
        """Start or stop our listener; not started while another process (a service) serves this database."""
        if self.app.listener is None and (others := self.other_listeners()):
            self.say(f"✗ {service_text(others[0])}: not starting a second listener into this database")
            return
        message = self.app.toggle_listener()
        self.say(message)
        self.refresh_listener()
        self.read_status()

    def other_listeners(self) -> list[dict]:
        """The listeners serving this database from other processes, asked now (their identity files)."""
        from ...core.status import listeners

        return other_listeners(listeners(self.app.db_path), os.getpid())

    @work(thread=True, exclusive=True, group="status", exit_on_error=False)
    def read_status(self) -> None:
        from ...core.status import status

        try:
            found = status(self.app.db_path)
        except (DicomtuiError, OSError) as exc:
            self.post_message(StatusRead(None, str(exc)))
            return
        floor = self.nodes.local.min_free_bytes  # the nodes file this app uses (status reads the default one)
        found["disk"]["min_free"] = floor
        found["disk"]["refusing"] = floor > 0 and found["disk"]["free"] < floor
        self.post_message(StatusRead(found))

    def on_status_read(self, message: StatusRead) -> None:
        self.status = message.status
        self.refresh_listener()

    def refresh_listener(self) -> None:
        listener = self.app.listener
        local = self.nodes.local
        others = other_listeners(self.status.get("listeners", []), os.getpid()) if self.status else []
        if listener is not None:
            text = (f"Listener running as {listener.local.ae_title} on {listener.local.bind}:{listener.port}  ·  "
                    f"{counted(listener.indexed, 'instance')} indexed into {listener.db_path}  ·  l stops it")
        elif others:
            text = "\n".join(service_text(entry) for entry in others)
        else:
            callers = ", callers: " + " ".join(local.allow) if local.allow else ""
            text = (f"Listener stopped (l starts it as {local.ae_title} on {local.bind}:{local.port}"
                    f"{', TLS' if local.tls_cert else ''}{callers})")
        if self.status is not None:
            text += "\n" + status_line(self.status)
        self.query_one("#listener-status", Static).update(text)
        table = self.query_one("#associations", DataTable)
        rows = list(listener.associations)[-50:] if listener is not None else []
        if table.row_count or rows:
            table.clear()
            for stats in reversed(rows):
                table.add_row(stats.calling_ae, stats.address, stats.ended or "open", str(stats.images),
                              f"{stats.bytes / 1e6:.1f}", f"{stats.rate:.0f}/s")
