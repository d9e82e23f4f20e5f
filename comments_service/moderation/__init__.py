"""The author's pages under /moderate: sign-in, the reply queue, requests, metrics, outbox."""
