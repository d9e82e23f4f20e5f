"""The listening figures of the PostgreSQL store (CommentStore.listening_inputs), read without
any comment's record: the per-group, per-thread and site figures and the weekly counts from the
running tables migration 0009's trigger keeps (a few hundred rows, whatever the store's size);
the weekly reply times, the target window and the due count from partial indexes over the plain
columns of migration 0006 (words, reply_seconds, individual…).

Whether a replied reader comment was answered individually depends on the author's replies
standing under it; :data:`INDIVIDUAL` works it out in SQL and the comments table's writers run
it, in the same transaction, for every reader comment written and the parent of every author
comment written (:func:`refresh_individual`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import date, timedelta

from comments_service.metrics_inputs import (
    GroupInputs,
    ListeningInputs,
    WeekInputs,
    recent_comment,
    word_count,
)
from comments_service.models import Comment
from comments_service.store.postgres.listening_groups import KeptGroups
from comments_service.store.postgres.rows import Cursor, record_of

# The rule of metrics.individual_reply_times for the reader comments %(ids)s names (the same
# expression as migration 0006's): the first standing reply counts unless it was a stock one,
# and then the first standing reply that is not. Set-based (the replies grouped once, joined),
# so an import of many comments is one hash join, not a look-up per comment.
INDIVIDUAL = """
WITH wanted AS (SELECT DISTINCT unnest(%(ids)s::text[]) AS id),
standing AS (
    SELECT r.parent AS id,
           (array_agg(r.stock ORDER BY r.created, r.seq))[1] AS first_stock,
           (array_agg(r.created ORDER BY r.created, r.seq))[1] AS first_created,
           min(r.created) FILTER (WHERE NOT r.stock) AS first_good
    FROM comments AS r JOIN wanted ON r.parent = wanted.id
    WHERE r.is_author AND r.state = 'posted'
    GROUP BY r.parent)
UPDATE comments AS c SET
    individual = c.state = 'replied'
        AND (coalesce(f.first_stock, false) = false OR f.first_good IS NOT NULL),
    individual_at = CASE WHEN c.state <> 'replied' THEN NULL
                         WHEN coalesce(f.first_stock, false) = false
                         THEN coalesce(c.replied_at, f.first_created) ELSE f.first_good END
FROM wanted LEFT JOIN standing AS f USING (id)
WHERE c.id = wanted.id AND NOT c.is_author
"""

AUTHOR_WORDS = "SELECT thread, words FROM listening_authors"
LEFT_OUT = ("SELECT count(*) FILTER (WHERE state = 'spam'),"
            " count(*) FILTER (WHERE state = 'withdrawn')"
            " FROM comments WHERE NOT is_author AND state IN ('spam', 'withdrawn')")
RECEIVED = ("SELECT week, sum(received) FROM listening_weeks WHERE week >= %s"
            " GROUP BY week")
ANSWERED = """
SELECT date_trunc('week', replied_at::timestamptz AT TIME ZONE 'UTC')::date AS week, count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY reply_seconds)
FROM comments WHERE NOT is_author AND state = 'replied' AND replied_at >= %s
    AND reply_seconds IS NOT NULL
GROUP BY week
"""
RECENT = """
SELECT id, thread, created, individual, individual_at FROM comments
WHERE NOT is_author AND state IN ('awaiting_reply', 'replied') AND created >= %s
ORDER BY created, id
"""
DUE = ("SELECT count(*) FROM comments WHERE state = 'awaiting_reply' AND NOT is_author"
       " AND created <= %s")
# Rows written before migration 0006 are counted in batches of this many.
COUNT_BATCH = 1000


def refresh_individual(cursor: Cursor, comments: Iterable[Comment]) -> None:
    """Work ``individual`` out again for the reader comments among ``comments`` and the
    parents of the author's comments among them (in the caller's transaction)."""
    ids = sorted({comment.parent if comment.is_author else comment.id for comment in comments
                  if not comment.is_author or comment.parent})
    if ids:
        cursor.execute(INDIVIDUAL, {"ids": ids})


def count_words(cursor: Cursor) -> int:
    """Count the words of rows written before migration 0006 (the word rule is Python's);
    returns how many rows were counted. A row a writer has counted since is left alone."""
    counted = 0
    while True:
        rows = cursor.execute("SELECT id, record FROM comments WHERE words IS NULL LIMIT %s",
                              (COUNT_BATCH,)).fetchall()
        if not rows:
            return counted
        cursor.executemany(
            "UPDATE comments SET words = %s WHERE id = %s AND words IS NULL",
            [(word_count(record_of(Comment, record, f"comment {comment_id}").body), comment_id)
             for comment_id, record in rows],
        )
        counted += len(rows)


def listening_inputs(cursor: Cursor, kept: KeptGroups, since: str, due_from: str | None,
                     weeks_from: date | None) -> ListeningInputs:
    """CommentStore.listening_inputs, in the caller's transaction; ``kept`` is the process's
    copy of the group figures."""
    groups = kept.figures(cursor)
    overall, threads, questions = groups.overall, dict(groups.threads), dict(groups.questions)
    author_total = 0
    # A thread with any standing author comment has a row (and its figures), even at 0 words.
    for thread, words in cursor.execute(AUTHOR_WORDS).fetchall():
        author_total += int(words)
        threads[thread] = replace(threads.get(thread, GroupInputs()), author_words=int(words))
    overall = replace(overall, author_words=author_total)
    spam, withdrawn = cursor.execute(LEFT_OUT).fetchone() or (0, 0)
    weeks: dict[date, WeekInputs] = {}
    if weeks_from is not None:
        for week, count in cursor.execute(RECEIVED, (weeks_from,)).fetchall():
            weeks[week] = WeekInputs(received=int(count))
        # A day early: a time written with another offset than UTC may fall in the week before.
        start = (weeks_from - timedelta(days=1)).isoformat()
        for week, count, median in cursor.execute(ANSWERED, (start,)).fetchall():
            if week >= weeks_from:
                weeks[week] = WeekInputs(received=weeks.get(week, WeekInputs()).received,
                                         answered=int(count), median_reply_seconds=median)
    recent = [recent_comment(*row) for row in cursor.execute(RECENT, (since,)).fetchall()]
    due = cursor.execute(DUE, (due_from,)).fetchone() if due_from is not None else None
    return ListeningInputs(
        overall=overall, articles=threads, questions=questions, spam=int(spam),
        withdrawn=int(withdrawn), weeks=weeks, recent=recent, due=int(due[0]) if due else 0,
    )
