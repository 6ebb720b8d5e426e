"""Optuna studies in storage that several hosts share, with heartbeats so a lost worker's trial ends.

Every trial's process keeps a heartbeat in the storage while it runs; a trial whose heartbeat
is older than the search's `stale_after_seconds` is failed by the next process that looks
(another trial starting, or the search flow waiting), so a killed worker loses that trial only.
The storage is an SQLAlchemy URL: sqlite for one host, a database server (PostgreSQL, MySQL)
that every host reaches for several.
"""

from pathlib import Path

import optuna

from imagepipe.search.spec import Search

DEFAULT_STORAGE = ".search/optuna.db"
# sqlite serialises writers; a trial's report waits this long for another's write to finish.
SQLITE_BUSY_TIMEOUT_SECONDS = 60


def default_storage(root: Path) -> str:
    path = (root / DEFAULT_STORAGE).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def storage(url: str, search: Search | None = None) -> optuna.storages.RDBStorage:
    """The storage at url; with a search, with heartbeats (for the processes that run trials)."""
    engine = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}} if url.startswith("sqlite") else None
    if search is None:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine)
    return optuna.storages.RDBStorage(
        url,
        engine_kwargs=engine,
        heartbeat_interval=max(1, search.stale_after_seconds // 4),
        grace_period=search.stale_after_seconds,
    )


def open_study(url: str, name: str, search: Search, create: bool = False) -> optuna.Study:
    """The study `name`, with the search's direction, sampler and pruner (Optuna stores neither
    sampler nor pruner: every process builds its own from search.yaml)."""
    found, sampler, pruner = storage(url, search), search.make_sampler(), search.pruner.make()
    if create:
        return optuna.create_study(
            study_name=name,
            storage=found,
            sampler=sampler,
            pruner=pruner,
            direction=search.direction,
            load_if_exists=True,
        )
    return optuna.load_study(study_name=name, storage=found, sampler=sampler, pruner=pruner)


def trial_id(url: str, study: str, number: int) -> int:
    """The storage's id of trial `number` of study: what a process other than the one that asked
    for the trial needs to open it."""
    found = storage(url)
    return found.get_trial_id_from_study_id_trial_number(found.get_study_id_from_name(study), number)
