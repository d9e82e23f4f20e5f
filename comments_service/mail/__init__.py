"""What to send and when: notification policy for readers and the author, webhook events,
signed unsubscribe/confirm tokens and their pages. Storing and sending is outbox/'s.

    notify.py           queue_message, reply_posted, comment_posted, digests, the mail settings,
                        unsubscribe_address / confirm_address
    webhook_events.py   comment.created and reply.created: payload and queueing
    tokens.py           unsubscribe and confirm tokens, and the links that carry them
    links.py            the public base URL, links to routes and articles, the site's name
    addresses.py        what counts as a mail address, masking one, the From address
    pages.py            the unsubscribe and confirm pages behind those links
"""
