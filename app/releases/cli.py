"""`promptserve release ...`: split a release label across versions, judge, promote, roll back.

The commands talk to a running embedded backend over its releases API (docs/RELEASES.md);
they never open the database, so they work the same against a backend on another machine.
Where: `--url` / PROMPTLAYER_BASE_URL, else the embedded backend of a local `promptserve
serve`. Which key: `--api-key` / PROMPTLAYER_API_KEY, else the key that local backend keeps
in its data directory; the command never makes one up. Errors are printed whole, on their
own lines (never squeezed into a table), and exit non-zero.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from app.releases._client import ReleaseApiError, ReleaseClient
from app.releases.describe import (
    ACTIONS,
    arms_text,
    number_text,
    segments_text,
    state_text,
)

__all__ = ["parse_arms", "parse_segments", "release_cli"]

release_cli = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="A/B releases: split a label across versions, judge them, promote or roll back.",
)

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="PROMPTLAYER_BASE_URL",
        show_envvar=True,
        help="The embedded backend's root (default: the one of a local `promptserve serve`).",
    ),
]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="PROMPTLAYER_API_KEY",
        show_envvar=True,
        help="The backend's API key (default: the key a local backend keeps in its data dir).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")]
Template = Annotated[str, typer.Argument(help="The prompt template's name.")]
Label = Annotated[str, typer.Argument(help="The release label, e.g. prod.")]


# Errors --------------------------------------------------------------------------------------


def _fail(message: str, code: int = 1) -> NoReturn:
    # Plain echo, not rich: nothing wraps, cuts or reads markup in the message.
    typer.echo(f"promptserve release: error: {message}", err=True)
    raise typer.Exit(code)


# Where and which key -------------------------------------------------------------------------


def _resolve(url: str | None, api_key: str | None) -> tuple[str, str]:
    """The backend's URL and key: options/env first, then the local backend's own."""
    if url and api_key:
        return url, api_key
    from pydantic import ValidationError

    from app.config import Settings

    try:
        settings = Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in error.errors()
        )
        _fail(f"bad setting ({problems}); fix it or pass --url and --api-key", 2)
    local = False
    if not url:
        url = settings.promptlayer_base_url
    if not url:
        from app.publishing.command import embedded_registry_url

        url, local = embedded_registry_url(settings), True
    if not api_key and settings.promptlayer_api_key is not None:
        api_key = settings.promptlayer_api_key.get_secret_value()
    if not api_key and local:
        path = settings.data_dir / "backend_api_key"
        if path.is_file():
            api_key = path.read_text(encoding="utf-8").strip() or None
    if not api_key:
        _fail(
            f"no API key for {url}: pass the backend's key with --api-key or set "
            "PROMPTLAYER_API_KEY (the embedded backend prints it at first start and keeps it "
            "in <data dir>/backend_api_key)",
            2,
        )
    return url, api_key


def _call(url: str | None, api_key: str | None, call: Callable[[ReleaseClient], Any]) -> Any:
    base_url, key = _resolve(url, api_key)
    try:
        with ReleaseClient(base_url, key) as client:
            return call(client)
    except ReleaseApiError as error:
        _fail(error.message)


# Parsing the split's options ----------------------------------------------------------------


def _arm(text: str, option: str) -> dict[str, int]:
    version, sep, weight = text.strip().partition("=")
    if not sep or not version.strip().isdigit() or not weight.strip().isdigit():
        raise typer.BadParameter(f"{text!r} is not VERSION=WEIGHT (e.g. 3=50)", param_hint=option)
    return {"version": int(version), "weight": int(weight)}


def parse_arms(values: Sequence[str]) -> list[dict[str, int]]:
    """`["3=50", "4=50"]` → the contract's arms (the backend checks the sums and versions)."""
    return [_arm(value, "--arm") for value in values]


def parse_segments(values: Sequence[str]) -> dict[str, Any] | None:
    """`["plan=pro:4=100", "plan=team:3=20,4=80"]` → `{"key", "values": {value: arms}}`."""
    if not values:
        return None
    key: str | None = None
    arms_of: dict[str, list[dict[str, int]]] = {}
    for text in values:
        head, sep, arms = text.partition(":")
        name, eq, value = head.partition("=")
        if not sep or not eq or not name.strip() or not value or not arms.strip():
            raise typer.BadParameter(
                f"{text!r} is not KEY=VALUE:VERSION=WEIGHT[,VERSION=WEIGHT...] "
                "(e.g. plan=pro:4=100)",
                param_hint="--segment",
            )
        if key is not None and name.strip() != key:
            raise typer.BadParameter(
                f"segments split by one metadata key; got {key!r} and {name.strip()!r}",
                param_hint="--segment",
            )
        key = name.strip()
        if value in arms_of:
            raise typer.BadParameter(f"{key}={value} given twice", param_hint="--segment")
        arms_of[value] = [_arm(arm, "--segment") for arm in arms.split(",")]
    return {"key": key, "values": arms_of}


# Printing ------------------------------------------------------------------------------------


def _console() -> Console:
    # Wide enough for the arms side by side; a narrower terminal wraps cells, never cuts.
    return Console(width=max(100, Console().width), highlight=False, soft_wrap=False)


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _interval_text(interval: Mapping[str, float] | None) -> str:
    if not interval:
        return ""
    return f" [{interval['low']:.1f}, {interval['high']:.1f}]"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def _arms_table(judgement: Mapping[str, Any], split: Mapping[str, Any]) -> Table:
    """Arms side by side: one column per arm, one row per figure."""
    weights = {arm["version"]: arm["weight"] for arm in split.get("arms") or []}
    arms = judgement.get("arms") or []
    table = Table(title="Arms", title_justify="left")
    table.add_column("")
    for arm in arms:
        table.add_column(f"v{arm['version']} ({arm.get('role', '?')})", justify="right")
    rows: list[tuple[str, Callable[[Mapping[str, Any]], str]]] = [
        ("weight", lambda a: f"{weights.get(a['version'], '–')} %"),
        ("requests", lambda a: str(a.get("requests", 0))),
        ("feedback", lambda a: str(a.get("feedback", 0))),
        (
            "mean score [95 %]",
            lambda a: (
                number_text(a.get("mean_score")) + _interval_text(a.get("mean_score_interval"))
            ),
        ),
        ("error rate", lambda a: _percent(a.get("error_rate"))),
        ("p50 latency", lambda a: number_text(a.get("latency_p50_ms"), 0, " ms")),
        ("p95 latency", lambda a: number_text(a.get("latency_p95_ms"), 0, " ms")),
        ("tokens", lambda a: str(a.get("tokens_total", 0))),
    ]
    for name, cell in rows:
        table.add_row(name, *(escape(cell(arm)) for arm in arms))
    return table


def _history_table(history: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(title="History", title_justify="left")
    for column in ("at (UTC)", "action", "from", "to", "by"):
        table.add_column(column, overflow="fold")
    for row in history:
        table.add_row(
            escape(str(row.get("at", ""))),
            escape(ACTIONS.get(str(row.get("action")), str(row.get("action")))),
            escape(state_text(row.get("before"))),
            escape(state_text(row.get("after"))),
            escape(str(row.get("by", ""))),
        )
    return table


def _print_split(console: Console, template: str, label: str, split: Mapping[str, Any]) -> None:
    arms = arms_text(split.get("arms") or [], split.get("control"))
    console.print(f"{escape(template)} · {escape(label)}: {escape(arms)}")
    segments = segments_text(split.get("segments"))
    if segments:
        console.print(f"segments: {escape(segments)}")
    console.print(
        f"control v{split.get('control')}, guardrail {'on' if split.get('guardrail') else 'off'}, "
        f"alpha {split.get('alpha')}, release {escape(str(split.get('release_id')))}, "
        f"since {escape(str(split.get('started_at')))}"
    )


def _print_verdicts(console: Console, judgement: Mapping[str, Any]) -> None:
    for comparison in judgement.get("comparisons") or []:
        console.print(
            f"\nv{comparison.get('version')}: [bold]{escape(str(comparison.get('verdict')))}[/]"
        )
        # A paragraph of its own, wrapped at word boundaries, never cut.
        console.print(escape(str(comparison.get("explanation", ""))), soft_wrap=True)


# Commands ------------------------------------------------------------------------------------


@release_cli.command("list")
def list_command(
    url: UrlOption = None, api_key: KeyOption = None, as_json: JsonOption = False
) -> None:
    """The labels split right now."""
    answer = _call(url, api_key, lambda c: c.list())
    if as_json:
        _print_json(answer)
        return
    releases = answer.get("releases") or []
    console = _console()
    if not releases:
        console.print("No label is split. Start one with `promptserve release split`.")
        return
    table = Table(title="Releases in force", title_justify="left")
    for column in ("template", "label", "arms", "segments", "guardrail", "since (UTC)"):
        table.add_column(column, overflow="fold")
    for split in releases:
        table.add_row(
            escape(str(split.get("template"))),
            escape(str(split.get("label"))),
            escape(arms_text(split.get("arms") or [], split.get("control"))),
            escape(segments_text(split.get("segments")) or "–"),
            "on" if split.get("guardrail") else "off",
            escape(str(split.get("started_at", ""))),
        )
    console.print(table)


@release_cli.command("show")
def show_command(
    template: Template,
    label: Label,
    url: UrlOption = None,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """The label: its split, the arms with their figures, the verdicts, the history."""

    def fetch(client: ReleaseClient) -> dict[str, Any]:
        release = client.get(template, label)
        judged = client.judgement(template, label) if release.get("split") else None
        return {**release, "judgement": judged}

    answer = _call(url, api_key, fetch)
    if as_json:
        _print_json(answer)
        return
    console = _console()
    split = answer.get("split")
    if split:
        _print_split(console, template, label, split)
        judgement = answer.get("judgement") or {}
        console.print(_arms_table(judgement, split))
        _print_verdicts(console, judgement)
    else:
        version = answer.get("version")
        where = "on no version" if version is None else f"on v{version}"
        console.print(f"{escape(template)} · {escape(label)}: not split, {where}.")
    history = answer.get("history") or []
    console.print()
    if history:
        console.print(_history_table(history))
    else:
        console.print("No history yet.")


@release_cli.command("split")
def split_command(
    template: Template,
    label: Label,
    arm: Annotated[
        list[str],
        typer.Option(help="VERSION=WEIGHT, once per arm; weights sum to 100 (e.g. 3=50)."),
    ],
    control: Annotated[
        int | None,
        typer.Option(help="The control version (default: where the label points now)."),
    ] = None,
    segment: Annotated[
        list[str] | None,
        typer.Option(
            help="KEY=VALUE:VERSION=WEIGHT[,...]: own weights for requests whose metadata "
            "KEY is VALUE (e.g. plan=pro:4=100); repeatable, one KEY."
        ),
    ] = None,
    guardrail: Annotated[
        bool,
        typer.Option(help="Roll back by itself when a challenger is significantly worse."),
    ] = False,
    alpha: Annotated[
        float | None,
        typer.Option(help="The verdict's error rate (default 0.05).", min=0.0001, max=0.5),
    ] = None,
    url: UrlOption = None,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Split LABEL across versions (start a split or change its weights)."""
    body: dict[str, Any] = {"arms": parse_arms(arm), "guardrail": guardrail}
    if control is not None:
        body["control"] = control
    segments = parse_segments(segment or [])
    if segments is not None:
        body["segments"] = segments
    if alpha is not None:
        body["alpha"] = alpha
    split = _call(url, api_key, lambda c: c.split(template, label, body))
    if as_json:
        _print_json(split)
        return
    console = _console()
    _print_split(console, template, label, split)
    console.print(f"See how it goes: promptserve release show {template} {label}")


@release_cli.command("promote")
def promote_command(
    template: Template,
    label: Label,
    version: Annotated[
        int | None,
        typer.Option(help="The version to promote (default: the challenger judged better)."),
    ] = None,
    url: UrlOption = None,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move LABEL to the winner (or --version) and end the split."""
    answer = _call(url, api_key, lambda c: c.promote(template, label, version))
    if as_json:
        _print_json(answer)
        return
    typer.echo(f"{template} · {label} → v{answer.get('version')}; the split has ended.")


@release_cli.command("rollback")
def rollback_command(
    template: Template,
    label: Label,
    url: UrlOption = None,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move LABEL back to the control and end the split."""
    answer = _call(url, api_key, lambda c: c.rollback(template, label))
    if as_json:
        _print_json(answer)
        return
    typer.echo(
        f"{template} · {label} → v{answer.get('version')} (the control); the split has ended."
    )


@release_cli.command("end")
def end_command(
    template: Template,
    label: Label,
    url: UrlOption = None,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """End the split; LABEL stays on the control."""
    answer = _call(url, api_key, lambda c: c.end(template, label))
    if as_json:
        _print_json(answer)
        return
    where = f"v{answer['version']}" if answer.get("version") is not None else "the control"
    typer.echo(f"{template} · {label}: the split has ended; the label stays on {where}.")
