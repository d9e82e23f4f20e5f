"""The durable delivery queue: every message is stored before it is sent, whatever the
transport (SMTP mail, webhooks), and sent by whoever claims it first.

    message.py     what a message is made of: its id, its times, one-line header values
    queue.py       retry, discard, settle, expire held messages, back-off, wake the sender
    transport.py   the Transport protocol: deliver(config, message) -> None | (reason, permanent)
    smtp.py        mail over SMTP (SmtpTransport, build_email)
    webhooks.py    webhooks: queue_webhook, signing, HTTP delivery (WebhookTransport)
    sender.py      send_due (one pass), the transport registry by kind, the MailSender thread

It knows nothing of what is sent or why (mail/ decides that) and has no HTTP views (the outbox
page is moderation/outbox.py)."""
