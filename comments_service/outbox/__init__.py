"""The durable delivery queue: every message is stored before it is sent, whatever the
transport (SMTP mail, webhooks)."""
