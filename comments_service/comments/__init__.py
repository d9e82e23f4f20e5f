"""A reader comment's life without HTTP: validation, rendering, spam checks, posting, replying,
the public view of a thread, and the nudge towards individual replies."""
