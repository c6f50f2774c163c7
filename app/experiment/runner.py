"""Run every question under every variant (× repeats) on the batch engine, one row per run.

Each variant has its own deck (connections shared by all its rows); rows are interleaved
(question 1 under every variant, then question 2, …) so both halves of a comparison see the
same conditions as the run goes on. Row ids are `question:variant:repeat`, so --resume runs
exactly the missing ones.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.approvals import Approver, approve_all, decline_all
from app.batch.engine import base_row, run_row
from app.batch.inputs import InputRow
from app.deck import Deck, DeckOptions
from app.errors import AgentdeckError, UsageError
from app.experiment.spec import Experiment, VariantPlan
from app.prices import PriceTable


@dataclass
class ExperimentRow(InputRow):
    """An input row for one variant and repeat."""

    question: str = ""
    variant: str = ""
    repeat: int = 1


def expand(rows: Iterator[InputRow], variants: list[str], repeat: int) -> Iterator[ExperimentRow]:
    """Every question under every variant and repeat, question by question."""
    for row in rows:
        for n in range(1, repeat + 1):
            for variant in variants:
                yield ExperimentRow(
                    row.line,
                    f"{row.id}:{variant}:{n}",
                    row.input,
                    row.error,
                    question=row.id,
                    variant=variant,
                    repeat=n,
                )


@dataclass
class VariantRunner:
    """Runs each row on its variant's deck and prices it."""

    decks: dict[str, Deck]
    approvers: dict[str, Approver]
    models: dict[str, str | None]
    prices: PriceTable
    timeout: float | None = None

    async def run(self, row: InputRow) -> dict[str, Any]:
        assert isinstance(row, ExperimentRow)
        deck = self.decks[row.variant]
        if row.error is not None:
            return tag(row, base_row(row, deck.agent.name), None)
        result = await run_row(deck, row, self.approvers[row.variant], self.timeout)
        return tag(row, result, self.prices.cost(self.models[row.variant], result.get("usage")))


def tag(row: ExperimentRow, result: dict[str, Any], cost: float | None) -> dict[str, Any]:
    """A batch result as an experiment row: question, variant and repeat first, its cost last."""
    result.pop("id")
    head = {"id": row.id, "question": row.question, "variant": row.variant, "repeat": row.repeat}
    return {**head, **result, "cost_usd": None if cost is None else round(cost, 8)}


async def open_decks(stack: AsyncExitStack, plans: list[VariantPlan]) -> dict[str, Deck]:
    """Every variant's deck, connected at the same time; errors name the variant."""

    async def enter(plan: VariantPlan) -> Deck:
        deck = Deck(plan.loaded, DeckOptions(agent=plan.agent, audited=True, session=f"experiment:{plan.name}"))
        await deck.__aenter__()
        return deck

    results = await asyncio.gather(*(enter(p) for p in plans), return_exceptions=True)
    decks = {plan.name: result for plan, result in zip(plans, results, strict=True) if isinstance(result, Deck)}

    async def close() -> None:
        await asyncio.gather(*(deck.__aexit__(None, None, None) for deck in decks.values()))

    stack.push_async_callback(close)
    for plan, result in zip(plans, results, strict=True):
        if isinstance(result, AgentdeckError):
            result.message = f"variant '{plan.name}': {result.message}"
            raise result
        if isinstance(result, BaseException):
            raise result
    return decks


def runner_for(experiment: Experiment, decks: dict[str, Deck], timeout: float | None) -> VariantRunner:
    """The row runner of an experiment whose decks are open."""
    approvers: dict[str, Approver] = {
        p.name: approve_all if p.approve == "yes" else decline_all for p in experiment.variants
    }
    models = {name: deck.models.model_name(deck.agent.name) for name, deck in decks.items()}
    prices = PriceTable(experiment.base.config.defaults.prices, experiment.spec.prices)
    return VariantRunner(decks, approvers, models, prices, timeout)


def write_meta(experiment: Experiment, directory: Path, repeat: int, resume: bool) -> None:
    """experiment.json: what ran (the reports and `compare` read it); a resume must match it."""
    path = directory / "experiment.json"
    names = [p.name for p in experiment.variants]
    if resume and path.exists():
        before = json.loads(path.read_text(encoding="utf-8"))
        if [v["name"] for v in before["variants"]] != names or before.get("repeat") != repeat:
            raise UsageError(
                f"{directory} holds an experiment with other variants or repeats "
                f"({', '.join(v['name'] for v in before['variants'])} × {before.get('repeat')})",
                hint="resume with the same file and --repeat, or give another -o DIR (or --overwrite)",
            )
    meta = {
        "file": str(experiment.path),
        "description": experiment.spec.description,
        "config": str(experiment.base.path),
        "questions": str(experiment.questions.path),
        "repeat": repeat,
        "variants": [p.summary() for p in experiment.variants],
        "written_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    directory.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, json.dumps(meta, indent=2, ensure_ascii=False) + "\n")


def _write_atomic(path: Path, text: str) -> None:
    """Write beside the file and rename over it, so a kill never leaves half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_reports(directory: Path) -> tuple[Any, list[Path]]:
    """report.json, report.md and report.html from the rows; returns the report and the files."""
    from app.experiment import html, report

    built = report.build(directory)
    meta = json.loads((directory / "experiment.json").read_text(encoding="utf-8"))
    title = f"Experiment {Path(meta['file']).stem}"
    subtitle = (meta.get("description") or "") + (
        f" — {built.total_questions} question(s) from {Path(meta['questions']).name}, "
        f"{len(built.variants)} variants × {built.repeat} repeat(s), config {Path(meta['config']).name}"
    )
    files = {
        "report.json": json.dumps(built.as_dict(), indent=2, ensure_ascii=False) + "\n",
        "report.md": report.markdown(built, title),
        "report.html": html.render(built, title, subtitle.lstrip(" —")),
    }
    for name, text in files.items():
        _write_atomic(directory / name, text)
    return built, [directory / name for name in files]
