"""Replies by email: the author answers a notification in their mail client and the answer is
posted as their reply. worker.py reads the mailbox (imap.py) and records each message once;
parsing.py takes the new text and the filing directive from it; posting.py posts it through
comments/replying, files it (tally/filing) or holds it when the nudge would flag it. The reply
addresses themselves are made in mail/reply_address.py (notifications are mail's)."""
