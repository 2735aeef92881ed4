"""The output directory of a comparison: locked for one writer (:class:`OutputDir`), and its
results files, checked, resumed or backed up, rewritten atomically (:class:`ResultsFile`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..results import (
    ResultsFormatError,
    finished_runs,
    new_doc,
    read_results_doc,
    run_key,
    write_results,
)
from .presets import CompareConfig, ConfigError


class OutputDir:
    """The ``--out`` directory, created if needed and locked for one writer: ``OUT/.lock``
    holds an exclusive ``flock`` (released by the kernel when the process ends, however it
    ends, so a lock left by a dead process never blocks) and the holder's PID."""

    def __init__(self, path: str | os.PathLike, what: str | None = None):
        """``what``: how messages name the directory (default ``out PATH``; the paper preset's
        Keras half names itself as the sibling of ``out``, a path the user did not type)."""
        text = os.fspath(path)
        if not text.strip():
            raise ConfigError("out is empty; give a directory, e.g. out='runs/compare'",
                              param="out")
        self.path = Path(text).expanduser()
        what = what or f"out {self.path}"
        try:
            dangling = self.path.is_symlink() and not self.path.exists()
            not_dir = self.path.exists() and not self.path.is_dir()
        except OSError as e:  # a name too long, a path through a file
            raise ConfigError(f"{what}: cannot use it: {e.strerror or e}; give another "
                              "directory (a shorter name, a path of directories)",
                              param="out") from None
        if dangling:
            raise ConfigError(f"{what} is a link to {os.readlink(self.path)}, which does not "
                              "exist (or the link loops); give a directory, or fix the link",
                              param="out")
        if not_dir:
            raise ConfigError(f"{what} is a file, not a directory; give a directory (it is "
                              "created if missing)", param="out")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.path / ".lock", "a+", encoding="utf-8")  # noqa: SIM115
        except OSError as e:
            raise ConfigError(f"{what}: cannot use it: {e.strerror or e}"
                              f"{f' ({e.filename})' if e.filename else ''}; give a "
                              "writable directory", param="out") from None
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no lock
            return
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.seek(0)
            pid = self._lock.read().strip() or "unknown"
            self._lock.close()
            raise ConfigError(f"{what} is in use by another compare run (PID {pid}); wait for "
                              "it to finish, or give another out=...", param="out") from None
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(f"{os.getpid()}\n")
        self._lock.flush()
        for tmp in self.path.glob(".*.tmp"):  # left by a killed writer (we hold the lock)
            if tmp.name.startswith((".results.", "..checkpoint-")):
                tmp.unlink(missing_ok=True)

    def release(self) -> None:
        self._lock.close()  # closing the file releases the flock

    def checkpoint(self, phase: str, seed: int, init: str | None = None) -> Path:
        tag = f"-{init}" if init else ""
        return self.path / f".checkpoint-{phase}-seed{seed}{tag}.pt"

    def remove_checkpoints(self) -> None:
        for p in self.path.glob(".checkpoint-*.pt"):
            p.unlink(missing_ok=True)


def _free_backup_name(path: Path) -> Path:
    """``results.json.bak``, or ``results.json.bak2``, ``.bak3``... when taken: a second
    ``--force`` must not replace the runs the first one kept."""
    candidate, n = path.with_name(path.name + ".bak"), 1
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = path.with_name(f"{path.name}.bak{n}")
    return candidate


class ResultsFile:
    """``results.json`` + ``results.csv`` in a locked :class:`OutputDir`, rewritten atomically
    on every save, never with fewer finished runs than the file had.

    A file already there is checked first (before any data is loaded): with ``resume`` its
    configuration must be ``cfg``'s and its finished runs are kept; without, a file holding runs
    is refused unless ``force`` (which moves it to ``results.json.bak``)."""

    def __init__(self, out: OutputDir, cfg: CompareConfig, *, resume: bool,
                 force: bool = False):
        self.out = out
        self.dir = out.path
        self.json_path = self.dir / "results.json"
        self.csv_path = self.dir / "results.csv"
        exp = cfg.experiment()
        self.doc: dict[str, Any] = new_doc(exp)
        self.previous: dict[str, dict[str, Any]] = {}
        self.resumed_from: str | None = None
        self.backup: Path | None = None
        self.ablation = cfg.inits is not None
        self._dirty = False
        # what the checks decide is done by begin(), once the run is sure to start: a command
        # refused later (another directory, the data) must not have touched this one
        self._clear_checkpoints = False
        self._started = False
        if not (self.json_path.exists() or self.json_path.is_symlink()):
            self.on_disk: set[str] = set()
            self._clear_checkpoints = True  # of a run whose results file was removed
            return
        try:
            old: dict[str, Any] | None = read_results_doc(self.json_path)
        except ResultsFormatError as e:
            if not force:
                raise ConfigError(str(e)) from None
            old = None
        if force:
            self.backup = _free_backup_name(self.json_path)  # moved there by begin()
            self._clear_checkpoints = True
            self.on_disk = set()
            return
        assert old is not None
        done = finished_runs(old)
        self.on_disk = set(done)
        same = old.get("config") == exp
        if not same and (resume or old["runs"] or old.get("selection", {}).get("runs")):
            diff = sorted(k for k in set(exp) | set(old.get("config", {}))
                          if exp.get(k) != old.get("config", {}).get(k))
            raise ConfigError(
                f"{self.json_path} holds results of another configuration (differs in: "
                f"{', '.join(diff)}); give another out=..., or add force=True to start over (the "
                "old file is kept as results.json.bak)")
        if not resume:
            if done:
                raise ConfigError(
                    f"{self.json_path} already holds {len(done)} finished run(s) of this "
                    "configuration; add resume=True to complete it, or force=True to start over "
                    "(the old file is kept as results.json.bak)")
            self._clear_checkpoints = True
            self.on_disk = set()
            return
        self.previous = done
        self.doc["runs"] = [r for r in old["runs"] if run_key(r) in done]
        old_sel = [r for r in old.get("selection", {}).get("runs", []) if run_key(r) in done]
        if old_sel:
            self.doc["selection"] = {"runs": old_sel}
        self.resumed_from = old.get("provenance", {}).get("date")

    def begin(self) -> None:
        """Carry out what the checks decided, once nothing can refuse the run any more: move the
        file that ``force`` replaces to its backup (``results.csv`` to its own beside it, so
        that no table outlives its file), remove stale checkpoints. Idempotent."""
        if self._started:
            return
        self._started = True
        if self.backup is not None:
            os.replace(self.json_path, self.backup)
            if self.csv_path.exists():  # the old table goes with the file it was made from
                os.replace(self.csv_path, _free_backup_name(self.csv_path))
        if self._clear_checkpoints:
            self.out.remove_checkpoints()

    def finished(self, run: dict[str, Any]) -> dict[str, Any] | None:
        return self.previous.get(run_key(run))

    def checkpoint(self, phase: str, seed: int, init: str | None = None) -> Path:
        """Where the stack of ``seed`` (and ``init``, in an ablation over inits) in ``phase``
        keeps its state between epochs."""
        return self.out.checkpoint(phase, seed, init if self.ablation else None)

    def put(self, run: dict[str, Any], section: str = "runs") -> None:
        runs = (self.doc.setdefault("selection", {}).setdefault("runs", [])
                if section == "selection" else self.doc["runs"])
        key = run_key(run)
        for i, r in enumerate(runs):
            if run_key(r) == key:
                runs[i] = run
                break
        else:
            runs.append(run)
        self._dirty = True

    def save(self) -> None:
        """Write both files (atomically). Refuses, as a bug, to write fewer finished runs than
        the file on disk holds."""
        done = set(finished_runs(self.doc))
        lost = self.on_disk - done
        if lost:  # a guard against a bug, not a user error
            raise RuntimeError(f"refusing to write {self.json_path}: {len(lost)} finished "
                               "run(s) on disk would be lost")
        write_results(self.doc, self.dir)  # the format is optlab.results's
        self.on_disk = done
        self._dirty = False
