"""Forwarding (routing) rules: which received instances the listener passes on, to which node, and when.

A rule (:class:`Route`) matches an instance on its stored attributes (Modality, StudyDescription,
SeriesDescription, PatientID, as the index records them) and on the calling AE title of the association that brought
it; a rule with no condition matches everything received. Its action is a forward to a node of ``nodes.toml`` (over
DIMSE, or STOW-RS when the node is DICOMweb only), per instance or per study once no instance of the study arrived
for ``idle`` seconds (DCMTK ``storescp --exec-on-eostudy``; dcm4chee's forward rules; Orthanc's Lua auto-routing).

The rules live in ``routes.toml`` beside ``nodes.toml`` (the settings folder), not in ``config.toml``: the listener
(core) reads them at start, and the settings module sits above the core; the rules name nodes of ``nodes.toml``,
which the core reads the same way. The queue of forwards is :mod:`.net.forward_queue`; :func:`drop_forwards` is here,
below the database, so that deleting instances (``rm``, the browser, ``db prune``) drops their forwards.
"""

from __future__ import annotations

import fnmatch
import re
import sqlite3
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from . import paths
from .errors import SettingsError

WHEN = ("instance", "study")
QUEUE_FILE = "forward-queue.sqlite"  # the forward queue in the database folder (:mod:`.net.forward_queue`)
DEFAULT_IDLE_S = 30.0
DEFAULT_MAX_TRIES = 8  # then the forward is "failed" (route queue shows it; route retry tries again)
DEFAULT_RETRY_FIRST_S = 5.0  # the first retry after a failure; doubled at each try
DEFAULT_RETRY_CAP_S = 600.0  # the longest wait between two tries
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration(text: str | float) -> float:
    """Seconds from ``30``, ``30s``, ``500ms``, ``5m``, ``1h``, ``1d`` (a number: seconds). Raises ValueError."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"a duration cannot be negative: {text}")
        return float(text)
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"not a duration: {text!r} (write e.g. 30s, 5m, 1h)")
    return float(match.group(1)) * _UNIT_S[match.group(2) or "s"]


@dataclass
class Route:
    """One forwarding rule. Empty conditions match everything; every condition given must match.

    ``calling_ae``: the association's Calling AE Title is one of these (exact, PS3.8 9.3.2). ``modality``: the
    instance's Modality (0008,0060) is one of these (case-insensitive). ``study_description`` /
    ``series_description``: a shell pattern (``*``, ``?``, ``[..]``; :mod:`fnmatch`, case-insensitive) the whole
    StudyDescription (0008,1030) / SeriesDescription (0008,103E) matches. ``patient_id_prefix``: PatientID
    (0010,0020) starts with it. ``to``: a node name of ``nodes.toml``. ``when``: "instance" (at once) or "study"
    (the study's instances once none arrived for ``idle_s`` seconds). ``deidentify``: what goes is a de-identified
    copy (PS3.15 Basic Profile, :class:`.export.deidentify.Deidentifier`, with the database's mapping: the same
    patient gets the same pseudonym as in ``deidentify`` jobs); the stored instance is unchanged.
    ``profile_options``: with ``deidentify``, the Basic Profile options (PS3.15 E.3) by the names
    ``deidentify --profile-option`` takes (``modified-dates``, ``safe-private``, …; checked by the forwarder,
    which knows them: :func:`.net.forwarder.check_routes`)."""

    to: str
    calling_ae: list[str] = field(default_factory=list)
    modality: list[str] = field(default_factory=list)
    study_description: str = ""
    series_description: str = ""
    patient_id_prefix: str = ""
    when: str = "instance"
    idle_s: float = DEFAULT_IDLE_S
    deidentify: bool = False
    profile_options: list[str] = field(default_factory=list)

    def matches(self, header: Mapping[str, Any], calling_ae: str | None) -> bool:
        """Whether an instance (its stored attributes, as :class:`.database.FileRecord` ``header`` holds them)
        received from ``calling_ae`` (None: not known, e.g. indexed after a crash) is forwarded by this rule. A rule
        that names calling AE titles does not match an instance whose caller is not known."""
        if self.calling_ae and calling_ae not in self.calling_ae:
            return False
        if self.modality and str(header.get("Modality") or "").upper() not in {m.upper() for m in self.modality}:
            return False
        for pattern, keyword in ((self.study_description, "StudyDescription"),
                                 (self.series_description, "SeriesDescription")):
            if pattern and not fnmatch.fnmatchcase(str(header.get(keyword) or "").lower(), pattern.lower()):
                return False
        return not self.patient_id_prefix or str(header.get("PatientID") or "").startswith(self.patient_id_prefix)

    def describe(self) -> str:
        """The rule in one line, as ``route ls`` prints it."""
        conditions = [f"calling AE {'/'.join(self.calling_ae)}" if self.calling_ae else "",
                      f"modality {'/'.join(self.modality)}" if self.modality else "",
                      f"study description {self.study_description!r}" if self.study_description else "",
                      f"series description {self.series_description!r}" if self.series_description else "",
                      f"PatientID starting {self.patient_id_prefix!r}" if self.patient_id_prefix else ""]
        what = " and ".join(c for c in conditions if c) or "everything received"
        when = "each instance at once" if self.when == "instance" else f"each study after {self.idle_s:g} s idle"
        deid = ""
        if self.deidentify:
            deid = f" de-identified ({', '.join(self.profile_options)})" if self.profile_options else " de-identified"
        return f"{what} → {self.to}{deid}, {when}"


@dataclass
class RetryPolicy:
    """How the forwarder retries: the first retry ``first_s`` after a failure, doubled at each try up to
    ``cap_s``; after ``max_tries`` tries the forward is failed (kept, shown, retried only on ``route retry``)."""

    max_tries: int = DEFAULT_MAX_TRIES
    first_s: float = DEFAULT_RETRY_FIRST_S
    cap_s: float = DEFAULT_RETRY_CAP_S

    def delay(self, tries: int) -> float:
        """Seconds to wait after the ``tries``-th failed try (1, 2, …)."""
        return min(self.first_s * 2 ** max(tries - 1, 0), self.cap_s)


@dataclass
class Routes:
    """The contents of ``routes.toml``: the rules in order (``route ls`` numbers them from 1) and the retry policy."""

    rules: list[Route] = field(default_factory=list)
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def routes_file() -> Path:
    """``routes.toml`` beside ``nodes.toml`` in the settings folder."""
    return paths.config_dir() / "routes.toml"


_ROUTE_KEYS = {f.name for f in fields(Route)}
_RETRY_KEYS = {f.name for f in fields(RetryPolicy)}


def _route(path: Path, n: int, data: Any) -> Route:
    where = f"{path}: route {n}"
    if not isinstance(data, dict):
        raise SettingsError(f"{where} must be a table ([[route]])")
    unknown = set(data) - _ROUTE_KEYS
    if unknown:
        raise SettingsError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    if not isinstance(data.get("to"), str) or not data["to"]:
        raise SettingsError(f"{where}: 'to' must name a node of nodes.toml")
    for key in ("calling_ae", "modality", "profile_options"):
        if key in data and (not isinstance(data[key], list) or not all(isinstance(v, str) for v in data[key])):
            raise SettingsError(f"{where}: '{key}' must be a list of strings")
    for key in ("study_description", "series_description", "patient_id_prefix"):
        if key in data and not isinstance(data[key], str):
            raise SettingsError(f"{where}: '{key}' must be a string")
    if not isinstance(data.get("deidentify", False), bool):
        raise SettingsError(f"{where}: 'deidentify' must be true or false")
    if data.get("profile_options") and not data.get("deidentify"):
        raise SettingsError(f"{where}: 'profile_options' are options of de-identification: set deidentify = true")
    if data.get("when", "instance") not in WHEN:
        raise SettingsError(f"{where}: 'when' must be one of {', '.join(WHEN)}")
    try:
        if "idle_s" in data:
            data = {**data, "idle_s": duration(data["idle_s"])}
    except ValueError as exc:
        raise SettingsError(f"{where}: 'idle_s': {exc}") from None
    return Route(**data)


def _retry(path: Path, data: Any) -> RetryPolicy:
    if not isinstance(data, dict) or set(data) - _RETRY_KEYS:
        raise SettingsError(f"{path}: [retry] takes only {', '.join(sorted(_RETRY_KEYS))}")
    policy = RetryPolicy()
    if "max_tries" in data:
        if not isinstance(data["max_tries"], int) or isinstance(data["max_tries"], bool) or data["max_tries"] < 1:
            raise SettingsError(f"{path}: [retry] max_tries must be a whole number of at least 1")
        policy.max_tries = data["max_tries"]
    for key in ("first_s", "cap_s"):
        if key in data:
            try:
                setattr(policy, key, duration(data[key]))
            except ValueError as exc:
                raise SettingsError(f"{path}: [retry] {key}: {exc}") from None
    return policy


def load_routes(path: Path | None = None) -> Routes:
    """The rules of ``path`` (default :func:`routes_file`); none when it does not exist. Raises SettingsError naming
    the file, the rule and the key (invalid TOML, an unknown key, a value of the wrong type)."""
    path = path or routes_file()
    if not path.exists():
        return Routes()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: not valid TOML ({exc})") from None
    unknown = set(data) - {"route", "retry"}
    if unknown:
        raise SettingsError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))} (known: [[route]], [retry])")
    rules = data.get("route", [])
    if not isinstance(rules, list):
        raise SettingsError(f"{path}: 'route' must be an array of tables ([[route]])")
    return Routes([_route(path, n, r) for n, r in enumerate(rules, 1)], _retry(path, data.get("retry", {})))


def save_routes(routes: Routes, path: Path | None = None) -> Path:
    """Write ``routes`` to ``path`` (default :func:`routes_file`) atomically; returns the path."""
    data: dict[str, Any] = {"retry": asdict(routes.retry),
                            "route": [{k: v for k, v in asdict(r).items() if v or k == "to"} for r in routes.rules]}
    return paths.write_toml(path or routes_file(), data)


def destinations(rules: list[Route], header: Mapping[str, Any], calling_ae: str | None) -> dict[str, Route]:
    """Node name → the first rule forwarding this instance there (one forward per node, however many rules match),
    de-identifying when any matching rule to that node does: a plain rule listed first never sends in clear what
    another rule to the same node de-identifies. The profile options are those EVERY de-identifying rule to that
    node names: each option keeps more (dates, characteristics, device, private, UIDs; cleaned descriptors instead
    of removed ones), so the options all agree on never keep what one rule removes."""
    found: dict[str, Route] = {}
    for rule in rules:
        if not rule.matches(header, calling_ae):
            continue
        first = found.get(rule.to)
        if first is None:
            found[rule.to] = rule
        elif rule.deidentify and not first.deidentify:
            found[rule.to] = replace(first, deidentify=True, profile_options=list(rule.profile_options))
        elif rule.deidentify and set(first.profile_options) - set(rule.profile_options):
            found[rule.to] = replace(first, profile_options=[o for o in first.profile_options
                                                             if o in rule.profile_options])
    return found


def drop_forwards(root: Path, sop_instance_uids: Iterable[str]) -> int:
    """Delete the pending and failed forwards of instances just deleted from the database folder ``root`` (their
    files are gone: a forward would only retry a vanished file); sent rows stay as history. Returns how many were
    dropped (0 when nothing was ever queued). Raises sqlite3.Error (the queue file is locked beyond the timeout,
    or not a queue)."""
    path = Path(root) / QUEUE_FILE
    uids = list(sop_instance_uids)
    if not uids or not path.exists():
        return 0
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        dropped = 0
        for start in range(0, len(uids), 500):
            chunk = uids[start:start + 500]
            dropped += conn.execute(f"DELETE FROM forwards WHERE state != 'sent' AND SOPInstanceUID IN "
                                    f"({', '.join('?' * len(chunk))})", chunk).rowcount
        conn.execute("COMMIT")
        return dropped
    finally:
        conn.close()
