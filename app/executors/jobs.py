"""What a batch or experiment runs, described so that a worker process or a Ray actor can open it too.

The driver opens the same job locally for `--executor local`; every other executor sends the job
to its workers, and each opens its own decks (its own MCP connections and tool caches).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from app.batch.engine import RowRunner
from app.batch.inputs import InputRow
from app.config.models_base import Strict


class BatchJob(Strict):
    """`agentdeck batch`: every row through one agent."""

    kind: Literal["batch"] = "batch"
    config: str | None = None
    agent: str | None = None
    approve: str | None = None
    timeout: float | None = None
    user: str | None = None
    session: str = "batch"


class ExperimentJob(Strict):
    """`agentdeck experiment run`: every row on its variant's deck."""

    kind: Literal["experiment"] = "experiment"
    file: str
    config: str | None = None
    timeout: float | None = None


Job = Annotated[BatchJob | ExperimentJob, Field(discriminator="kind")]
JOB = TypeAdapter(Job)


@dataclass
class Opened:
    """A job opened in this process: its runner, and what the command reports about it."""

    runner: RowRunner
    warnings: list[str] = field(default_factory=list)
    model: str | None = None
    offline: str | None = None  # the offline model's label, when that is what runs
    fetches: Callable[[], dict[str, int]] = dict  # tools/list requests per server so far
    agents: dict[str, str] = field(default_factory=dict)  # the agent of each variant ("" for a batch)


async def open_job(
    stack: AsyncExitStack, job: BatchJob | ExperimentJob, status_console: Any = None, loaded: Any = None
) -> Opened:
    """Open the job's decks on `stack` (closed with it) and build its row runner.

    `loaded`: what the command has already read, if at hand (the config of a batch, an experiment).
    """
    if isinstance(job, BatchJob):
        return await _open_batch(stack, job, status_console, loaded)
    return await _open_experiment(stack, job, loaded)


async def _open_batch(stack: AsyncExitStack, job: BatchJob, status_console: Any, loaded: Any) -> Opened:
    from app.approvals import approve_all, decline_all
    from app.batch.engine import DeckRunner
    from app.commands.common import load
    from app.startup import opened_deck

    loaded = loaded or load(job.config)
    deck = await stack.enter_async_context(
        opened_deck(loaded, job.agent, status_console=status_console, audited=True, user=job.user, session=job.session)
    )
    approver = approve_all if job.approve == "yes" else decline_all
    name = deck.agent.name
    offline = deck.models.model_label(name) if deck.models.is_offline(name) else None
    return Opened(
        DeckRunner(deck, approver, job.timeout), deck.warnings(), deck.models.model_name(name), offline,
        lambda: {n: s.tools_list_fetches for n, s in deck.servers.items()}, {"": name},
    )  # fmt: skip


async def _open_experiment(stack: AsyncExitStack, job: ExperimentJob, loaded: Any) -> Opened:
    from pathlib import Path

    from app.experiment.runner import open_decks, runner_for
    from app.experiment.spec import load_experiment

    experiment = loaded or load_experiment(Path(job.file), job.config)
    decks = await open_decks(stack, experiment.variants)
    warnings = [f"variant {name}: {w}" for name, deck in decks.items() for w in deck.warnings()]
    agents = {name: deck.agent.name for name, deck in decks.items()}
    return Opened(runner_for(experiment, decks, job.timeout), warnings, agents=agents)


def row_to_wire(row: InputRow) -> dict[str, Any]:
    """A row as JSON-ready data (an experiment row keeps its variant and repeat)."""
    return {"type": type(row).__name__, **dataclasses.asdict(row)}


def row_from_wire(data: dict[str, Any]) -> InputRow:
    """The row `row_to_wire` described."""
    fields = {k: v for k, v in data.items() if k != "type"}
    if data.get("type") == "ExperimentRow":
        from app.experiment.runner import ExperimentRow

        return ExperimentRow(**fields)
    return InputRow(**fields)
