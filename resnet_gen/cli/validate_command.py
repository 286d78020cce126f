"""validate: check specs, each against the spec language, the network it makes and its reference
numbers. It imports only what checking needs (not the report's counting tables), since a check of
the whole catalog is mostly the cost of starting."""

from __future__ import annotations

import click

from ..errors import SpecError
from ..user_cache import cache_folder
from .app import set_option
from .output import echo, progress
from .sources import catalog_option, expand_sources, verbose_option
from .validate_cache import ValidatedSpecs
from .validate_run import check_sources, default_jobs


@click.command()
@click.argument("specs", nargs=-1)
@set_option
@catalog_option
@verbose_option
@click.option("--no-cache", "no_cache", is_flag=True, help="Check every spec afresh; keep no record of the passes.")
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=None,
    help="Check in this many processes [default: one per core for long lists].",
)
def validate(
    specs: tuple[str, ...],
    overrides: tuple[str, ...],
    use_catalog: bool,
    verbose: bool,
    no_cache: bool,
    jobs: int | None,
) -> None:
    """Check specs (yours or --catalog).

    Specs are files or catalog names; with none, the specs in your folder (./specs, or ./my_specs
    in a checkout of resnet-gen), or with --catalog every shipped spec. Every field, the network it
    makes, and the numbers of a reference block the spec gives. A spec that passed before and has
    not changed since (nor its parents, nor resnet-gen) is not checked again; see --no-cache."""
    problems: list[str] = []
    sources = expand_sources(specs, use_catalog)
    # Passes on record (resnet_gen.cli.validate_cache); a run with --set checks everything.
    passed = ValidatedSpecs(None if no_cache or overrides else cache_folder())
    checked = check_sources(sources, overrides, passed, jobs=jobs or default_jobs(len(sources)))
    valid = 0
    for outcome in progress(checked, "validate", len(sources)):
        if outcome.problems:
            problems.extend(outcome.problems)
            continue
        if outcome.key:
            passed.put(outcome.key, outcome.name, outcome.params, outcome.macs)
        valid += 1
        if verbose or len(sources) == 1:
            echo(f"ok  {outcome.name:<28} {outcome.params:>13,} params  {outcome.macs / 1e9:8.3f} GMACs")
    passed.save()
    if problems:
        raise SpecError(problems)  # one line each on stderr, nothing on stdout
    if len(sources) > 1:
        echo(f"{len(sources)} specs: {valid} valid")
