"""The comments of the PostgreSQL store (CommentStore): one row per comment, one transaction
per call, and a version token per thread replaced in the transaction of every write of it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import date
from typing import Any

from psycopg import sql

from comments_service.metrics_inputs import ListeningInputs
from comments_service.models import Comment, CommentState
from comments_service.store.base import (
    EMPTY_THREAD_VERSION,
    ReaderHistory,
    check_thread_key,
    is_thread_key,
)
from comments_service.store.errors import CommentNotFound, DuplicateComment
from comments_service.store.kept import KeptComments
from comments_service.store.postgres.connections import Connections
from comments_service.store.postgres.listening import (
    count_words,
    listening_inputs,
    refresh_individual,
)
from comments_service.store.postgres.listening_groups import KeptGroups
from comments_service.store.postgres.rows import (
    INSERT_COMMENT,
    UPDATE_COMMENT,
    comment_row,
    comments_of_rows,
    folded,
    locked_change,
    record_of,
    touch_threads,
)

# Rows read per query when walking every comment (all_comments).
EXPORT_BATCH = 500


# The queue's neighbours of a comment (queue_neighbours): {} is the filters' condition.
NEIGHBOUR_BEFORE = sql.SQL("SELECT id FROM comments WHERE {} AND (created, id) <"
                           " (%(created)s, %(id)s) ORDER BY created DESC, id DESC LIMIT 1")
NEIGHBOUR_AFTER = sql.SQL("SELECT id FROM comments WHERE {} AND (created, id) >"
                          " (%(created)s, %(id)s) ORDER BY created, id LIMIT 1")


# Each question's newest answers (waiting or replied), oldest first: the ids and versions
# the themes page keys what it worked out on (tally/themes.py).
NEWEST_ANSWERS = """
SELECT wanted.thread, wanted.question, newest.id, newest.version
FROM unnest(%(threads)s::text[], %(questions)s::text[]) WITH ORDINALITY
     AS wanted(thread, question, position)
CROSS JOIN LATERAL (
    SELECT id, created, xmin::text AS version FROM comments
    WHERE thread = wanted.thread AND question = wanted.question
      AND state IN ('awaiting_reply', 'replied')
    ORDER BY created DESC, id DESC LIMIT %(limit)s
) AS newest
ORDER BY wanted.position, newest.created, newest.id
"""


def like_escaped(text: str) -> str:
    """``text`` as a LIKE pattern matching only itself (backslash, LIKE's escape, first)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filters(
    state: CommentState | None, thread: str | None, question: str | None
) -> tuple[sql.Composable, dict[str, Any]]:
    """A WHERE condition ("true" when nothing is asked) and its parameters."""
    clauses: list[sql.Composable] = [sql.SQL("true")]
    values: dict[str, Any] = {}
    for column, value in (("state", None if state is None else str(state)), ("thread", thread),
                          ("question", question)):
        if value is not None:
            clauses.append(sql.SQL("{} = {}").format(sql.Identifier(column),
                                                     sql.Placeholder(column)))
            values[column] = value
    return sql.SQL(" AND ").join(clauses), values


class PostgresComments:
    """The comments table (and thread_versions) of one database."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections
        self._kept = KeptComments()
        self._listening = KeptGroups()

    def add_comment(self, comment: Comment) -> Comment:
        check_thread_key(comment.thread)
        with self._connections.transaction() as cursor:
            cursor.execute(INSERT_COMMENT, comment_row(comment))
            if cursor.rowcount == 0:
                raise DuplicateComment(f"Comment {comment.id} is stored already")
            refresh_individual(cursor, [comment])
            touch_threads(cursor, [comment.thread])
        return comment

    def get_comment(self, comment_id: str) -> Comment | None:
        with self._connections.transaction() as cursor:
            rows = cursor.execute("SELECT id, record FROM comments WHERE id = %s",
                                  (comment_id,)).fetchall()
        return next(iter(comments_of_rows(rows)), None)

    def author_replies_to(self, comment_ids: Iterable[str]) -> dict[str, list[Comment]]:
        """Through the index on the replies' parent (migration 0003)."""
        wanted = list(dict.fromkeys(comment_ids))
        if not wanted:
            return {}
        with self._connections.transaction() as cursor:
            rows = cursor.execute(
                "SELECT id, record FROM comments WHERE is_author AND parent = ANY(%s)"
                " AND state <> 'withdrawn' ORDER BY created, seq", (wanted,)).fetchall()
        replies: dict[str, list[Comment]] = {}
        for comment in comments_of_rows(rows):
            replies.setdefault(comment.parent or "", []).append(comment)
        return replies

    def queue_neighbours(
        self, comment: Comment, *, thread: str | None = None, question: str | None = None
    ) -> tuple[str | None, str | None]:
        """Two lookups in the queue's index (comments_queue, comments_queue_thread)."""
        if thread is not None and not is_thread_key(thread):
            return None, None
        where, values = filters(CommentState.AWAITING_REPLY, thread, question)
        values.update(created=comment.created, id=comment.id)
        found = []
        for query in (NEIGHBOUR_BEFORE, NEIGHBOUR_AFTER):
            with self._connections.transaction() as cursor:
                row = cursor.execute(query.format(where), values).fetchone()
            found.append(row[0] if row else None)
        return found[0], found[1]

    def answer_counts(self) -> dict[tuple[str, str], int]:
        with self._connections.transaction() as cursor:
            rows = cursor.execute(
                "SELECT thread, question, sum(count) FROM comment_counts WHERE question <> ''"
                " AND state IN ('awaiting_reply', 'replied') AND NOT is_author"
                " GROUP BY thread, question HAVING sum(count) > 0 ORDER BY thread, question"
            ).fetchall()
        return {(thread, question): int(count) for thread, question, count in rows}

    def answer_versions(self, questions: Iterable[tuple[str, str]], limit: int
                        ) -> dict[tuple[str, str], list[tuple[str, object]]]:
        """Ids and row versions (``xmin``, store/kept.py) in one query, each question's newest
        from the comments_state index: no record is read."""
        wanted = list(dict.fromkeys(questions))
        found: dict[tuple[str, str], list[tuple[str, object]]] = {key: [] for key in wanted}
        if not wanted or limit <= 0:
            return found
        with self._connections.transaction() as cursor:
            rows = cursor.execute(NEWEST_ANSWERS, {
                "threads": [thread for thread, _question in wanted],
                "questions": [question for _thread, question in wanted], "limit": limit,
            }).fetchall()
        for thread, question, comment_id, version in rows:
            found[thread, question].append((comment_id, version))
        return found

    def get_comments(self, comment_ids: Iterable[str]) -> dict[str, Comment]:
        """Those this process read before at the same row version (``xmin``, store/kept.py)
        from its copies, the others' records read and parsed: a page reading the same
        comments again fetches ids and versions only."""
        wanted = list(dict.fromkeys(comment_ids))
        if not wanted:
            return {}
        with self._connections.transaction() as cursor:
            versions = cursor.execute("SELECT id, xmin::text FROM comments WHERE id = ANY(%s)",
                                      (wanted,)).fetchall()
            found = self._kept.get_many(versions)
            missing = [comment_id for comment_id, _version in versions
                       if comment_id not in found]
            if missing:
                rows = cursor.execute(
                    "SELECT id, xmin::text, record FROM comments WHERE id = ANY(%s)",
                    (missing,)).fetchall()
                for comment_id, version, record in rows:
                    comment = record_of(Comment, record, f"comment {comment_id}")
                    self._kept.put(comment, version)
                    found[comment_id] = comment
        return {comment_id: found[comment_id] for comment_id in wanted if comment_id in found}

    def thread_comments(self, thread: str) -> list[Comment]:
        if not is_thread_key(thread):
            return []
        with self._connections.transaction() as cursor:
            rows = cursor.execute("SELECT id, record FROM comments WHERE thread = %s"
                                  " ORDER BY created, seq", (thread,)).fetchall()
        return comments_of_rows(rows)

    def update_comment(self, comment_id: str, change: Callable[[Comment], Comment]) -> Comment:
        """Compare-and-set: ``change`` runs while the comment's row is locked, so it must not
        call the store for that comment."""
        with self._connections.transaction() as cursor:
            old, new = locked_change(cursor, "comments", comment_id, Comment, change,
                                     CommentNotFound(f"No comment {comment_id}"),
                                     fixed=("id", "thread"))
            if new != old:
                cursor.execute(UPDATE_COMMENT, comment_row(new))
                refresh_individual(cursor, [old, new])
                touch_threads(cursor, [new.thread])
        return new

    def waiting_comments(
        self, *, thread: str | None = None, question: str | None = None,
        limit: int = 50, offset: int = 0,
    ) -> list[Comment]:
        return self.comments_in_state(CommentState.AWAITING_REPLY, thread=thread,
                                      question=question, limit=limit, offset=offset)

    def count_waiting(self, *, thread: str | None = None, question: str | None = None) -> int:
        return self.count_in_state(CommentState.AWAITING_REPLY, thread=thread, question=question)

    def comments_in_state(
        self, state: CommentState, *, thread: str | None = None, question: str | None = None,
        limit: int = 50, offset: int = 0,
    ) -> list[Comment]:
        if limit <= 0 or (thread is not None and not is_thread_key(thread)):
            return []
        where, values = filters(CommentState(state), thread, question)
        with self._connections.transaction() as cursor:
            rows = cursor.execute(
                sql.SQL("SELECT id, record FROM comments WHERE {} ORDER BY created, id"
                        " LIMIT %(limit)s OFFSET %(offset)s").format(where),
                {**values, "limit": limit, "offset": max(offset, 0)},
            ).fetchall()
        return comments_of_rows(rows)

    def count_in_state(
        self, state: CommentState, *, thread: str | None = None, question: str | None = None
    ) -> int:
        """From the running counts (migration 0005), not the comments."""
        if thread is not None and not is_thread_key(thread):
            return 0
        return self._counted(CommentState(state), thread, question)

    def _counted(self, state: CommentState | None, thread: str | None,
                 question: str | None) -> int:
        where, values = filters(state, thread, None)
        if question is not None:
            where = sql.SQL("{} AND question = %(question)s").format(where)
            values["question"] = question
        with self._connections.transaction() as cursor:
            row = cursor.execute(sql.SQL("SELECT coalesce(sum(count), 0) FROM comment_counts"
                                         " WHERE {}").format(where), values).fetchone()
        return int(row[0]) if row else 0

    def state_counts(self) -> dict[CommentState, int]:
        with self._connections.transaction() as cursor:
            rows = cursor.execute(
                "SELECT state, sum(count) FROM comment_counts GROUP BY state").fetchall()
        counts = dict.fromkeys(CommentState, 0)
        for state, count in rows:
            counts[CommentState(state)] = int(count)
        return counts

    def find_comments(
        self, *, text: str | None = None, state: CommentState | None = None,
        thread: str | None = None, limit: int = 50, offset: int = 0,
        count_up_to: int | None = None,
    ) -> tuple[list[Comment], int]:
        """Casefolded substring of body or name, newest first: `LIKE '%needle%'` over the
        folded columns (the needle's pattern characters escaped), which their trigram indexes
        answer for a rare needle of three characters or more (migration 0008), while a common
        one is read newest first through comments_newest and stops at the page. With
        ``count_up_to``, the matches are counted only up to one more than that; without text,
        the total comes from the running counts."""
        if thread is not None and not is_thread_key(thread):
            return [], 0
        where, values = filters(None if state is None else CommentState(state), thread, None)
        # A search's statements are never prepared (prepare=False): one that psycopg
        # prepares after five runs could get a generic plan, made without the pattern, and
        # scan a trigram index whole for a needle without trigrams, or the whole table for a
        # common word where it should stop early.
        if text:
            where = sql.SQL("{} AND (body_folded LIKE %(pattern)s"
                            " OR name_folded LIKE %(pattern)s)").format(where)
            values["pattern"] = f"%{like_escaped(folded(text))}%"
            counting = sql.SQL("SELECT count(*) FROM comments WHERE {}").format(where)
            if count_up_to is not None:
                counting = sql.SQL("SELECT count(*) FROM (SELECT 1 FROM comments WHERE {}"
                                   " LIMIT %(counted)s) AS found").format(where)
                values["counted"] = max(count_up_to, 0) + 1
            with self._connections.transaction() as cursor:
                row = cursor.execute(counting, values, prepare=False).fetchone()
            total = int(row[0]) if row else 0
        else:  # the running counts (migration 0005)
            total = self._counted(None if state is None else CommentState(state), thread, None)
        with self._connections.transaction() as cursor:
            if limit <= 0 or total == 0:
                return [], total
            rows = cursor.execute(
                sql.SQL("SELECT id, record FROM comments WHERE {} ORDER BY created DESC,"
                        " id DESC LIMIT %(limit)s OFFSET %(offset)s").format(where),
                {**values, "limit": limit, "offset": max(offset, 0)}, prepare=False,
            ).fetchall()
        return comments_of_rows(rows), total

    def reader_history(self, reader_key: str, *, limit: int = 5) -> ReaderHistory:
        """Through the reader_key and parent columns and their indexes (migration 0003)."""
        with self._connections.transaction() as cursor:
            total, first = cursor.execute(
                "SELECT count(*), min(created) FROM comments"
                " WHERE reader_key = %s AND NOT is_author", (reader_key,),
            ).fetchone()
            rows = cursor.execute(
                "SELECT id, record FROM comments WHERE reader_key = %s"
                " AND NOT is_author ORDER BY created DESC, seq DESC LIMIT %s",
                (reader_key, max(limit, 0)),
            ).fetchall()
            comments = comments_of_rows(rows)
            answer_rows = cursor.execute(
                "SELECT id, record FROM comments WHERE is_author AND state <> 'withdrawn'"
                " AND parent IN (SELECT id FROM comments WHERE reader_key = %s"
                " AND NOT is_author) ORDER BY created, seq", (reader_key,),
            ).fetchall() if total else []
        replies: dict[str, list[Comment]] = {}
        for answer in comments_of_rows(answer_rows):
            replies.setdefault(answer.parent or "", []).append(answer)
        return ReaderHistory(comments=comments, replies=replies, total=total, first=first)

    def author_replies(self, limit: int | None = None) -> list[Comment]:
        if limit is not None and limit <= 0:
            return []
        with self._connections.transaction() as cursor:
            rows = cursor.execute(
                "SELECT id, record FROM comments WHERE is_author AND state <> 'withdrawn'"
                " ORDER BY created DESC, id DESC LIMIT %s", (limit,),
            ).fetchall()
        return comments_of_rows(rows)

    def public_counts(self, threads: Iterable[str]) -> dict[str, int]:
        asked = list(threads)
        counts = dict.fromkeys(asked, 0)
        valid = [thread for thread in counts if is_thread_key(thread)]
        if not valid:
            return counts
        with self._connections.transaction() as cursor:
            rows = cursor.execute(
                "SELECT thread, count(*) FROM comments WHERE public AND thread = ANY(%s)"
                " GROUP BY thread", (valid,),
            ).fetchall()
        counts.update({thread: int(count) for thread, count in rows})
        return counts

    def thread_version(self, thread: str) -> str:
        """A random token replaced in the transaction of every write of the thread."""
        if not is_thread_key(thread):
            return EMPTY_THREAD_VERSION
        with self._connections.transaction() as cursor:
            row = cursor.execute("SELECT version FROM thread_versions WHERE thread = %s",
                                 (thread,)).fetchone()
        return str(row[0]) if row else EMPTY_THREAD_VERSION

    def all_comments(self) -> Iterator[Comment]:
        """Threads in name order, oldest first: read in batches, each its own transaction, so
        a long export holds no connection while its consumer works."""
        after: tuple[str, str, int] | None = None
        while True:
            with self._connections.transaction() as cursor:
                if after is None:
                    rows = cursor.execute(
                        "SELECT thread, created, seq, id, record FROM comments"
                        " ORDER BY thread, created, seq LIMIT %s", (EXPORT_BATCH,),
                    ).fetchall()
                else:
                    rows = cursor.execute(
                        "SELECT thread, created, seq, id, record FROM comments"
                        " WHERE (thread, created, seq) > (%s, %s, %s)"
                        " ORDER BY thread, created, seq LIMIT %s", (*after, EXPORT_BATCH),
                    ).fetchall()
            for row in rows:
                yield record_of(Comment, row[-1], f"comment {row[3]}")
            if len(rows) < EXPORT_BATCH:
                return
            after = (rows[-1][0], rows[-1][1], rows[-1][2])

    def import_comments(self, comments: Iterable[Comment]) -> int:
        """Add the comments whose ids are not stored yet, all in one transaction (inserted in
        id order, so two imports of overlapping batches cannot deadlock)."""
        by_id: dict[str, Comment] = {}
        for comment in comments:
            check_thread_key(comment.thread)  # all checked before anything is written
            by_id.setdefault(comment.id, comment)
        if not by_id:
            return 0
        with self._connections.transaction() as cursor:
            cursor.executemany(
                INSERT_COMMENT + " RETURNING thread",
                [comment_row(by_id[comment_id]) for comment_id in sorted(by_id)],
                returning=True,
            )
            threads: list[str] = []
            while True:
                threads.extend(row[0] for row in cursor.fetchall())
                if not cursor.nextset():
                    break
            # Comments already stored are refreshed too: harmless, and no list of the added.
            refresh_individual(cursor, by_id.values())
            touch_threads(cursor, threads)
        return len(threads)

    def count_comments(self) -> int:
        with self._connections.transaction() as cursor:
            row = cursor.execute("SELECT coalesce(sum(count), 0) FROM comment_counts").fetchone()
        return int(row[0]) if row else 0

    def listening_inputs(
        self, *, since: str, due_from: str | None, weeks_from: date | None
    ) -> ListeningInputs:
        """SQL aggregates over migration 0006's columns (postgres/listening.py); rows stored
        before it have their words counted first (once, in their own transaction)."""
        with self._connections.transaction() as cursor:
            uncounted = cursor.execute(
                "SELECT 1 FROM comments WHERE words IS NULL LIMIT 1").fetchone()
        if uncounted:
            with self._connections.transaction() as cursor:
                count_words(cursor)
        with self._connections.transaction() as cursor:
            return listening_inputs(cursor, self._listening, since, due_from, weeks_from)
