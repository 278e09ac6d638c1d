"""The listener as a systemd service: the unit file ``dicomtui service install`` writes, where it goes, and the
commands that start it (issue 20).

``Type=notify``: ``dicomtui listen`` tells systemd READY=1 once its port is bound and its identity file written
(:func:`notify`, the sd_notify protocol of sd_notify(3): one datagram to ``$NOTIFY_SOCKET``), so ``systemctl start``
returns when the listener really serves, and fails when it cannot bind (exit 2) instead of reporting a start that
dies a moment later; STOPPING=1 when SIGTERM arrives. Hand-written (a dozen lines) rather than a dependency: the
protocol is one sendto. ``KillSignal=SIGTERM`` is what the listener stops on: it stops accepting, lets each open
association's current write become durable and indexes what is pending, hence the generous ``TimeoutStopSec``.

Quoting follows systemd.service(5) "Command lines" and systemd.unit(5) "Specifiers": arguments with spaces or
quotes are double-quoted with C-style escapes, ``%`` is written ``%%`` and ``$`` ``$$``.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import DicomtuiError

UNIT_NAME = "dicomtui-listen.service"
PRUNE_SERVICE = "dicomtui-prune.service"
PRUNE_TIMER = "dicomtui-prune.timer"
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
_BARE = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


class ServiceError(DicomtuiError):
    """The unit cannot be written or removed (permissions, a folder that cannot be made)."""


@dataclass
class UnitPlan:
    """A unit file to write: its ``path``, its ``text``, and the ``commands`` (shell lines) that start it."""

    path: Path
    text: str
    commands: list[str]
    system: bool


def user_unit_dir() -> Path:
    """``$XDG_CONFIG_HOME/systemd/user`` (default ``~/.config/systemd/user``): where ``systemctl --user`` finds
    units a user wrote (systemd.unit(5), "User Unit Search Path")."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user"


def quote_arg(arg: str) -> str:
    """One argument of an ``ExecStart=`` line, as systemd parses it back (systemd.service(5))."""
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if _BARE.fullmatch(arg):
        return escaped
    escaped = escaped.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def listen_command(db_path: Path, ae_title: str, port: int, bind: str, allow: Sequence[str], sync: str,
                   program: Sequence[str] | None = None, options: Sequence[str] = ()) -> list[str]:
    """The argument vector of ``dicomtui listen`` for the unit: the running Python's ``-m dicomtui`` by default
    (the same installation as the command that wrote the unit, not whichever ``dicomtui`` is first on PATH);
    ``options``: more ``listen`` options, passed through (the log file and format)."""
    argv = list(program or (sys.executable, "-m", "dicomtui"))
    argv += ["--db", str(Path(db_path).expanduser().resolve()), "listen", "--ae", ae_title, "--port", str(port),
             "--bind", bind or "0.0.0.0", "--sync", sync]
    argv += list(options)
    if allow:  # last: --allow takes every word after it
        argv += ["--allow", *allow]
    return argv


def _environment_lines(system: bool, user: str | None, environment: dict[str, str] | None) -> list[str]:
    lines = ["Environment=PYTHONUNBUFFERED=1"]
    lines += [f"Environment={quote_arg(f'{k}={v}')}" for k, v in sorted((environment or {}).items())]
    return lines + ([f"User={user}"] if system and user else [])


def unit_text(argv: Sequence[str], system: bool, description: str, user: str | None = None,
              environment: dict[str, str] | None = None) -> str:
    """The unit file for ``argv`` (see the module docstring for its choices). ``system``: a system unit run as
    ``user`` (so the database keeps its owner) wanted by multi-user.target; else a user unit wanted by
    default.target. ``environment``: variables the listener must see as the installing shell does (XDG dirs)."""
    lines = ["[Unit]", f"Description={description}", "Documentation=man:systemd.service(5)",
             "After=network-online.target", "Wants=network-online.target", "", "[Service]", "Type=notify",
             "NotifyAccess=main",
             f"ExecStart={' '.join(quote_arg(a) for a in argv)}", "Restart=on-failure", "RestartSec=5s",
             "KillSignal=SIGTERM", "TimeoutStopSec=120s", *_environment_lines(system, user, environment),
             "", "[Install]", f"WantedBy={'multi-user.target' if system else 'default.target'}", ""]
    return "\n".join(lines)


def _context(system: bool) -> tuple[Path, str, dict[str, str], str]:
    """(unit folder, user, environment to pass on, systemctl words) of a system or user unit."""
    env = {k: os.environ[k] for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME") if os.environ.get(k)}
    folder = SYSTEM_UNIT_DIR if system else user_unit_dir()
    return folder, getpass.getuser(), env, "sudo systemctl" if system else "systemctl --user"


def plan(argv: Sequence[str], system: bool, description: str) -> UnitPlan:
    """Where the unit goes and what starts it: a user unit in :func:`user_unit_dir` (started by ``systemctl
    --user``, kept running after logout by ``loginctl enable-linger``), or a system unit in /etc/systemd/system
    run as the current user."""
    folder, user, env, systemctl = _context(system)
    commands = [f"{systemctl} daemon-reload", f"{systemctl} enable --now {UNIT_NAME}"]
    if system:
        commands.append(f"journalctl -u {UNIT_NAME} -f")
    else:
        commands += [f"loginctl enable-linger {user}   # keep it running after you log out",
                     f"journalctl --user -u {UNIT_NAME} -f"]
    return UnitPlan(folder / UNIT_NAME, unit_text(argv, system, description, user, env), commands, system)


def prune_plans(db_path: Path, prune_args: Sequence[str], system: bool,
                program: Sequence[str] | None = None) -> list[UnitPlan]:
    """``service install --prune-daily``: a oneshot service running ``dicomtui db prune PRUNE_ARGS`` on the
    database and its timer, daily (``OnCalendar=daily``, ``Persistent=true``: a day missed while the machine was
    off runs at the next boot; systemd.timer(5)). The commands to start it come with the timer's plan."""
    folder, user, env, systemctl = _context(system)
    argv = [*(program or (sys.executable, "-m", "dicomtui")), "--db", str(Path(db_path).expanduser().resolve()),
            "db", "prune", *prune_args]
    service_text = "\n".join([
        "[Unit]", "Description=dicomtui retention: db prune, daily", "", "[Service]", "Type=oneshot",
        f"ExecStart={' '.join(quote_arg(a) for a in argv)}", *_environment_lines(system, user, env), ""])
    timer_text = "\n".join([
        "[Unit]", "Description=dicomtui retention: db prune, daily", "", "[Timer]", "OnCalendar=daily",
        "Persistent=true", "RandomizedDelaySec=15min", "", "[Install]", "WantedBy=timers.target", ""])
    return [UnitPlan(folder / PRUNE_SERVICE, service_text, [], system),
            UnitPlan(folder / PRUNE_TIMER, timer_text, [f"{systemctl} daemon-reload",
                                                        f"{systemctl} enable --now {PRUNE_TIMER}"], system)]


def install(unit: UnitPlan) -> None:
    """Write the unit file (its folder made if needed). Raises ServiceError when it cannot be written."""
    try:
        unit.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = unit.path.with_name(unit.path.name + ".tmp")
        tmp.write_text(unit.text)
        os.replace(tmp, unit.path)
    except OSError as exc:
        hint = (f" (a system unit needs root; with your settings: dicomtui service install --system --dry-run | "
                f"sudo tee {unit.path}, or use --user)" if unit.system else "")
        raise ServiceError(f"cannot write {unit.path}: {exc.strerror or exc}{hint}") from None


def uninstall(system: bool) -> list[Path]:
    """Remove the listener's unit file and the prune service and timer: the paths removed (none: nothing was
    installed). Raises ServiceError when one cannot be removed. Stopping them first is the user's (``systemctl
    [--user] disable --now``)."""
    removed = []
    for name in (UNIT_NAME, PRUNE_SERVICE, PRUNE_TIMER):
        path = (SYSTEM_UNIT_DIR if system else user_unit_dir()) / name
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ServiceError(f"cannot remove {path}: {exc.strerror or exc}") from None
        removed.append(path)
    return removed


def verify(path: Path) -> str | None:
    """``systemd-analyze verify`` of the unit file: its complaints ("" when none), or None when systemd-analyze
    is not installed (Debian's systemd package)."""
    program = shutil.which("systemd-analyze")
    if program is None:
        return None
    done = subprocess.run([program, "verify", str(path)], capture_output=True, text=True, timeout=60, check=False)
    return (done.stdout + done.stderr).strip() if done.returncode else ""


def notify(message: str) -> bool:
    """Send ``message`` (``READY=1``, ``STOPPING=1``, ``STATUS=…``; newline-separated assignments) to the service
    manager when it asked for it (``$NOTIFY_SOCKET``: a path, or ``@name`` for the abstract namespace; sd_notify(3)).
    Returns whether it was sent; never raises (a listener outside systemd has no socket)."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "/@":
        return False
    target = "\0" + address[1:] if address[0] == "@" else address
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode(), target)
    except OSError:
        return False
    return True
