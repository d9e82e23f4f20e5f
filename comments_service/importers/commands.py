"""``flask --app comments_service import …``: our own export, Isso, Disqus and WordPress.

    import FILE                 a tellmemore export (as before; also `import tellmemore FILE`)
    import isso PATH            an Isso comments.db
    import disqus PATH          a Disqus XML export
    import wordpress PATH       a WordPress WXR export

The three foreign sources take the same options: ``--dry-run`` (print the summary, write
nothing), ``--author-email``/``--author-name`` (repeatable: whose comments are the author's),
``--answered-before DATE`` (older unanswered comments leave the queue as answered), ``--map
OLD=NEW`` (repeatable) and ``--map-file FILE`` (CSV: old URL or path, article) for pages whose
URL changed. Everything is read, checked and planned before the first write: a broken file or
map changes nothing. Both runs print what was skipped and why, the threads left to map and the
command to run next (report.py); an import of more than PROGRESS_ABOVE comments shows progress
bars on stderr (rendering, then writing).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from comments_service.importers.common import (
    ImportOptions,
    WriteStopped,
    plan_import,
    render_plan,
    write_plan,
)
from comments_service.importers.disqus import read_disqus
from comments_service.importers.isso import read_isso
from comments_service.importers.matching import ThreadMatcher, load_map
from comments_service.importers.report import summary
from comments_service.importers.source import SourceData
from comments_service.importers.wordpress import read_wordpress
from comments_service.manifest import ManifestError
from comments_service.store.transfer import ImportRefused, import_comments, parse_export
from comments_service.wording import plural

OWN_FORMAT = "tellmemore"
DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]
PROGRESS_ABOVE = 1000  # more new comments than this: a progress bar on stderr


class ImportGroup(click.Group):
    """A group whose first argument may also be a file: `import FILE` stays `import
    tellmemore FILE`, so the command written before the importers existed keeps working."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = [OWN_FORMAT, *args]
        return super().parse_args(ctx, args)


@click.group("import", cls=ImportGroup)
def import_group() -> None:
    """Import comments: `import FILE` (a tellmemore export) or `import isso|disqus|wordpress
    PATH`."""


@import_group.command(OWN_FORMAT)
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def import_own(path: str) -> None:
    """Import a tellmemore export; checked whole first, comments already stored are skipped."""
    try:
        comments = parse_export(Path(path).read_bytes(), path)
    except ImportRefused as error:
        raise click.ClickException(f"{error}. Nothing was imported.") from error
    added, present = import_comments(current_app.extensions["tellmemore.store"], comments)
    click.echo(f"Imported {plural(added, 'comment')} ({present} already present) from {path}")


@dataclass(frozen=True)
class SourceRun:
    """One `import isso|disqus|wordpress` as the author typed it."""

    name: str
    path: str
    dry_run: bool
    author_email: tuple[str, ...]
    author_name: tuple[str, ...]
    answered_before: datetime | None
    maps: tuple[str, ...]
    map_files: tuple[str, ...]

    def command(self) -> list[str]:
        """The words of this command (without --dry-run), for "run this next"."""
        words = ["flask", "--app", "comments_service", "import", self.name, self.path]
        for option, values in (("--author-email", self.author_email),
                                ("--author-name", self.author_name), ("--map", self.maps),
                                ("--map-file", self.map_files)):
            for value in values:
                words += [option, value]
        if self.answered_before is not None:
            words += ["--answered-before", self.answered_before.isoformat(sep=" ")
                      .removesuffix(" 00:00:00")]
        return words


@contextmanager
def _progress(shown: bool, length: int, label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr (stdout keeps the summary) when ``shown``; else a no-op."""
    if not shown:
        yield lambda _count: None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update


def _run(reader: Callable[[str], SourceData], run: SourceRun) -> None:
    answered_before = run.answered_before
    options = ImportOptions.of(run.author_email, run.author_name,
                               answered_before.replace(tzinfo=UTC) if answered_before else None)
    try:
        manifest = current_app.extensions["tellmemore.manifest"].get()
    except ManifestError as error:
        raise click.ClickException(f"{error}. The import matches threads to the manifest's "
                                   "articles; nothing was imported.") from error
    store = current_app.extensions["tellmemore.store"]
    try:
        matcher = ThreadMatcher(manifest)
        thread_map = load_map(matcher, run.maps, run.map_files)
        data = reader(run.path)
        plan = plan_import(data, manifest, store, options, matcher)
    except ImportRefused as error:
        raise click.ClickException(f"{error}. Nothing was imported.") from error
    for line in summary(plan, options, run.command(), thread_map.unused(), manifest.location):
        click.echo(line)
    if run.dry_run:
        click.echo("Dry run: nothing was written.")
        return
    bars = len(plan.new) > PROGRESS_ABOVE
    with _progress(bars, len(plan.new), "Preparing") as step:
        render_plan(plan, step)
    try:
        with _progress(bars, len(plan.new), "Importing") as step:
            added = write_plan(store, plan, step)
    except WriteStopped as stopped:
        raise click.ClickException(
            f"the store failed after {stopped.added} of {len(plan.new)} new comments were "
            f"written ({stopped.error}). "
            f"{plural(len(stopped.threads_done), 'thread').capitalize()} written "
            f"{'is' if len(stopped.threads_done) == 1 else 'are'} complete and no other "
            "comment was stored; once the store is fixed, run the same "
            "command again: it adds the rest and nothing twice.") from stopped
    present = len(plan.new) + plan.present - added
    click.echo(f"Imported {plural(added, 'comment')} ({present} already present) from "
               f"{run.path}; "
               f"{plan.entering_queue} entered the reply queue")


def _source_command(name: str, reader: Callable[[str], SourceData], what: str) -> None:
    @import_group.command(name, help=f"Import {what}. Start with --dry-run: it writes "
                                     "nothing and says what would be skipped and which pages "
                                     "need --map. Importing twice adds nothing new.")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False))
    @click.option("--dry-run", is_flag=True, help="Print the summary; write nothing.")
    @click.option("--author-email", multiple=True, metavar="EMAIL",
                  help="Comments with this email are the author's own (repeatable).")
    @click.option("--author-name", multiple=True, metavar="NAME",
                  help="Comments with this name are the author's own (repeatable).")
    @click.option("--answered-before", type=click.DateTime(DATE_FORMATS), metavar="DATE",
                  help="Mark unanswered comments written before DATE (UTC) as answered, so "
                       "they do not fill the queue.")
    @click.option("--map", "maps", multiple=True, metavar="OLD=NEW",
                  help="Comments on the page OLD (a URL, or a path for any origin) go to the "
                       "article NEW (its thread key, URL or path). Repeatable.")
    @click.option("--map-file", "map_files", multiple=True, metavar="FILE",
                  type=click.Path(exists=True, dir_okay=False),
                  help="A CSV file of OLD,NEW lines, as --map (repeatable).")
    @with_appcontext
    def command(path: str, dry_run: bool, author_email: tuple[str, ...],
                author_name: tuple[str, ...], answered_before: datetime | None,
                maps: tuple[str, ...], map_files: tuple[str, ...]) -> None:
        _run(reader, SourceRun(name, path, dry_run, author_email, author_name,
                               answered_before, maps, map_files))


_source_command("isso", read_isso, "an Isso database (comments.db)")
_source_command("disqus", read_disqus, "a Disqus XML export")
_source_command("wordpress", read_wordpress, "a WordPress export (WXR)")
