"""`flask --app comments_service demo-data`: a demo author and a few reader comments to answer.

Used by `invoke demo` so a new user can sign in and work a real queue at once. The comments go
through the same posting path as readers' (validation, rendering, the queue), spread over the
site's articles and questions as the manifest lists them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
from flask import current_app
from flask.cli import with_appcontext
from werkzeug.security import generate_password_hash

from comments_service.comments.posting import post_reader_comment
from comments_service.mail.notify import queue_digest
from comments_service.manifest import ManifestError
from comments_service.models import Author, new_comment_id, utc_now

DEMO_NAME = "Ada Listener"
DEMO_EMAIL = "author@tellmemore.test"
DEMO_PASSWORD = "listen-to-readers"

# (reader, email or None, answers the article's question number or None, body)
SAMPLE_COMMENTS = (
    ("Maya", "maya@example.org", 0,
     "I went back through my last three posts and every one ended with *let me know what you "
     "think*. Nobody ever did. I think the question was too wide to answer."),
    ("Tom", None, 1,
     "The bit about replying one at a time hit home. I batch my replies on Sundays and they "
     "all come out the same. Do you ever answer on the day instead?"),
    ("Priya", "priya@example.org", None,
     "Could you write a follow-up on how you keep track of requests that readers repeat? "
     "I lose them in my inbox."),
    ("Jonas", None, 0,
     "Honest answer: I avoid the comments that disagree with me. Reading this, I am going "
     "to answer the one from last week about my pricing post."),
    ("Lea", "lea@example.org", None,
     "Small thing: the code example in the middle does not run on Python 3.9 because of the "
     "`match` statement. Maybe mention the version?"),
    ("Sam", "sam@example.org", None,
     "Another vote from me: please write a post on keeping track of requests that readers "
     "repeat. Three of my readers asked for the same thing and I only noticed when the third "
     "one did."),
    ("Noor", "noor@example.org", None,
     "Thank you for this, it is exactly what I needed this week."),
    ("Ravi", "ravi@example.org", None,
     "Would love a post about tracking the requests your readers keep repeating. How do you "
     "remember who asked?"),
    ("Elif", "elif@example.org", None,
     "Please write more on keeping a tally of repeated reader requests, with examples."),
    # A returning reader: her earlier comment shows beside the reply box (#24).
    ("Maya", "maya@example.org", None,
     "Back again: I rewrote the ending of my newest post as one narrow question, and two "
     "readers answered it the same day."),
)


@click.command("demo-data")
@click.option("--password", default=DEMO_PASSWORD, show_default=True,
              help="Password for the demo author.")
@with_appcontext
def demo_data_command(password: str) -> None:
    """Create the demo author and sample reader comments (only into an empty store)."""
    store = current_app.extensions["tellmemore.store"]
    if store.author_by_email(DEMO_EMAIL) is None:
        store.add_author(Author(
            id=new_comment_id(), name=DEMO_NAME, email=DEMO_EMAIL,
            password_hash=generate_password_hash(password), created=utc_now(),
        ))
        click.echo(f"Created the demo author {DEMO_EMAIL}")
    if store.count_comments():
        click.echo("The store has comments already; no sample comments added.")
        return
    try:
        articles = list(current_app.extensions["tellmemore.manifest"].get().articles.values())
    except ManifestError as error:
        raise click.ClickException(f"{error}; build the site first") from error
    if not articles:
        raise click.ClickException("The manifest lists no articles.")
    config = {**current_app.config, "SPAM_CHECKS": "off"}
    for number, (name, email, question_number, body) in enumerate(SAMPLE_COMMENTS):
        article = articles[number % len(articles)]
        question = None
        if question_number is not None and len(article.questions) > question_number:
            question = article.questions[question_number].id
        fields = {"name": name, "body": body, "email": email, "question": question,
                  "notify": bool(email)}
        post_reader_comment(store, article, fields, config)
    click.echo(f"Added {len(SAMPLE_COMMENTS)} sample reader comments to the queue.")
    if current_app.config["DEMO_MAILBOX"] and current_app.config["AUTHOR_NOTIFY"] == "digest":
        # The digest goes out once a day (AUTHOR_DIGEST_HOUR); the demo's mailbox shows the one
        # these comments would make at once.
        now = datetime.now(UTC)
        if queue_digest(store, now - timedelta(days=1), now):
            click.echo("Queued the author's digest of these comments (see the Mailbox).")
