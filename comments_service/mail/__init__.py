"""What to send and when: notification policy for readers and the author, signed
unsubscribe/confirm tokens and their pages."""
