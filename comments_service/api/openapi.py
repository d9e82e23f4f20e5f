"""The OpenAPI 3.1 document of the public API (served at /api/openapi.json), and of the two
author routes scripts use to file comments under requests (tagged "author": they need the
author's session cookie and, to post, the CSRF token the JSON view hands out).

Tests validate every response against these schemas, so the document cannot drift from what
the service really sends.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from comments_service.comments.validation import MAX_BODY, MAX_EMAIL, MAX_NAME, MAX_WEBSITE


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


NULLABLE_STRING = {"type": ["string", "null"]}
THREAD_PARAMETER = {
    "name": "thread", "in": "path", "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"},
    "description": "The article's thread key (its slug), as in comments-manifest.json.",
}
COMMENT_ID_PARAMETER = {
    "name": "comment_id", "in": "path", "required": True, "schema": {"type": "string"},
}
EDIT_TOKEN_PARAMETER = {
    "name": "X-Edit-Token", "in": "header", "required": False, "schema": {"type": "string"},
    "description": "The edit_token returned when the comment was created (valid 15 minutes); "
                   "or send it as edit_token in the JSON body. Never in the URL (400).",
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "message", "fields"],
        "properties": {
            "error": {"type": "string", "description": "A stable code, e.g. invalid_comment."},
            "message": {"type": "string", "description": "What went wrong, for people."},
            "fields": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "PublicComment": {
        "type": "object",
        "required": ["id", "parent", "question", "name", "website", "html", "created",
                     "edited", "is_author", "replies"],
        "properties": {
            "id": {"type": "string"},
            "parent": NULLABLE_STRING,
            "question": {**NULLABLE_STRING, "description": "Id of the reflection question."},
            "name": NULLABLE_STRING,
            "website": NULLABLE_STRING,
            "html": {"type": "string", "description": "Sanitised HTML rendered from Markdown."},
            "created": NULLABLE_STRING,
            "edited": NULLABLE_STRING,
            "is_author": {"type": "boolean", "description": "Written by the blog's author."},
            "removed": {"type": "boolean",
                        "description": "A placeholder for a comment that is not public."},
            "replies": {"type": "array", "items": _ref("PublicComment")},
        },
        "additionalProperties": False,
    },
    "Thread": {
        "type": "object",
        "required": ["thread", "title", "url", "questions", "count", "waiting", "comments",
                     "listening"],
        "properties": {
            "thread": {"type": "string"},
            "title": {"type": "string"},
            "url": {"type": "string"},
            "questions": {"type": "array", "items": {
                "type": "object", "required": ["id", "text"],
                "properties": {"id": {"type": "string"}, "text": {"type": "string"}},
                "additionalProperties": False,
            }},
            "count": {"type": "integer", "minimum": 0, "description": "Public comments."},
            "waiting": {"type": "integer", "minimum": 0,
                        "description": "Comments waiting for the author's reply."},
            "comments": {"type": "array", "items": _ref("PublicComment")},
            "listening": {
                "type": ["object", "null"],
                "description": "The public listening figures, as numbers for the page's "
                               "[data-l=key] spans. received/answered: how many of the "
                               "article's comments the author answered individually (absent "
                               "with fewer than 10). site_*: the site's figures for the "
                               "footer, at most LISTENING_CACHE_SECONDS old (absent with "
                               "fewer than 10 in the window; the site_reply_* with no "
                               "reply): the share answered in per cent and the median time "
                               "to reply in each unit, at least 1. null when none is given, "
                               "or when turned off. The public export's threads carry only "
                               "the article's.",
                "properties": {"received": {"type": "integer", "minimum": 10},
                               "answered": {"type": "integer", "minimum": 0},
                               "site_share": {"type": "integer", "minimum": 0, "maximum": 100},
                               "site_reply_min": {"type": "integer", "minimum": 1},
                               "site_reply_h": {"type": "integer", "minimum": 1},
                               "site_reply_days": {"type": "integer", "minimum": 1}},
                "dependentRequired": {"received": ["answered"], "answered": ["received"],
                                      "site_reply_min": ["site_share"]},
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    },
    "SiteListening": {
        "type": ["object", "null"],
        "description": "The share of the last window_days days' comments answered "
                       "individually and the median time to that reply; null with fewer "
                       "than 10, or when turned off.",
        "required": ["window_days", "received", "answered", "answered_share",
                     "median_reply_hours"],
        "properties": {
            "window_days": {"type": "integer"}, "received": {"type": "integer", "minimum": 10},
            "answered": {"type": "integer", "minimum": 0},
            "answered_share": {"type": "number", "minimum": 0, "maximum": 1},
            "median_reply_hours": {"type": ["number", "null"], "minimum": 0},
        },
        "additionalProperties": False,
    },
    "NewComment": {
        "type": "object",
        "required": ["name", "body"],
        "properties": {
            "name": {"type": "string", "maxLength": MAX_NAME},
            "body": {"type": "string", "maxLength": MAX_BODY,
                     "description": "Markdown: emphasis, links, lists, code, quotes."},
            "email": {"type": ["string", "null"], "maxLength": MAX_EMAIL,
                      "description": "Private; only for follow-up mail."},
            "website": {"type": ["string", "null"], "maxLength": MAX_WEBSITE},
            "parent": {**NULLABLE_STRING, "description": "Id of a public comment answered."},
            "question": {**NULLABLE_STRING, "description": "Id of a reflection question."},
            "notify": {"type": "boolean", "description": "Email me when the author replies."},
            "reader_token": {**NULLABLE_STRING,
                             "description": "Random id kept by the browser, to count people."},
            "form_token": {**NULLABLE_STRING, "description": "From GET /api/form-token."},
            "fax": {**NULLABLE_STRING, "description": "Honeypot: leave empty."},
        },
    },
    "OwnComment": {
        "type": "object",
        "required": ["id", "parent", "question", "name", "website", "html", "created",
                     "edited", "is_author", "state", "public"],
        "properties": {
            "id": {"type": "string"},
            "parent": NULLABLE_STRING,
            "question": NULLABLE_STRING,
            "name": {"type": "string"},
            "website": NULLABLE_STRING,
            "html": {"type": "string"},
            "created": {"type": "string"},
            "edited": NULLABLE_STRING,
            "is_author": {"type": "boolean"},
            "state": {"enum": ["awaiting_reply", "replied", "spam", "withdrawn", "posted"]},
            "public": {"type": "boolean"},
        },
        "additionalProperties": False,
    },
    "CreatedComment": {
        "type": "object",
        "required": ["comment", "edit_token", "editable_until"],
        "properties": {
            "comment": _ref("OwnComment"),
            "edit_token": {"type": "string"},
            "editable_until": {"type": "string"},
        },
        "additionalProperties": False,
    },
    "CommentResult": {
        "type": "object", "required": ["comment"], "properties": {"comment": _ref("OwnComment")},
        "additionalProperties": False,
    },
    "Counts": {
        "type": "object",
        "required": ["counts"],
        "properties": {"counts": {"type": "object", "additionalProperties": {
            "oneOf": [
                {"type": "null"},
                {"type": "object", "required": ["comments", "waiting"], "properties": {
                    "comments": {"type": "integer", "minimum": 0,
                                 "description": "Public comments."},
                    "waiting": {"type": "integer", "minimum": 0,
                                "description": "Comments waiting for the author's reply."},
                }, "additionalProperties": False},
            ]}}},
        "additionalProperties": False,
    },
    "PublicExport": {
        "type": "object",
        "required": ["schema_version", "generated", "threads", "listening"],
        "properties": {
            "schema_version": {"const": 1},
            "generated": {"type": "string"},
            "threads": {"type": "object", "additionalProperties": _ref("Thread")},
            "listening": _ref("SiteListening"),
        },
        "additionalProperties": False,
    },
    "FormToken": {
        "type": "object", "required": ["form_token"],
        "properties": {"form_token": {"type": "string"}}, "additionalProperties": False,
    },
    "Health": {
        "type": "object", "required": ["status"],
        "properties": {
            "status": {"enum": ["ok", "unavailable"]},
            "manifest": {"type": "object"},
            "error": {"type": "string"},
            "message": {"type": "string"},
        },
    },
}


REQUEST_REF = {
    "type": ["object", "null"],
    "required": ["id", "label", "people"],
    "properties": {
        "id": {"type": "string"},
        "label": {"type": "string"},
        "people": {"type": "integer", "minimum": 1,
                   "description": "Distinct people the author filed under it."},
    },
}
AUTHOR_SCHEMAS: dict[str, Any] = {
    "FilingView": {
        "type": "object",
        "required": ["comment", "request_suggestions", "suggested_choice", "request",
                     "csrf_token"],
        "properties": {
            "comment": {
                "type": "object",
                "required": ["id", "thread", "name", "body", "state", "question", "created",
                             "request_filed"],
                "properties": {
                    "id": {"type": "string"}, "thread": {"type": "string"},
                    "name": NULLABLE_STRING, "body": {"type": "string"},
                    "state": {"type": "string"}, "question": NULLABLE_STRING,
                    "created": {"type": "string", "format": "date-time"},
                    "request_filed": {"type": "boolean"},
                },
            },
            "request_suggestions": {
                "type": "array", "maxItems": 5,
                "description": "The requests this comment may belong to, best first.",
                "items": {
                    "type": "object", "required": ["id", "label", "people", "score"],
                    "properties": {"id": {"type": "string"}, "label": {"type": "string"},
                                   "people": {"type": "integer"}, "score": {"type": "number"}},
                },
            },
            "suggested_choice": {
                **NULLABLE_STRING,
                "description": "What the page preselects: a request id, \"none\" (not a "
                               "request), or null (the author chooses).",
            },
            "request": {**REQUEST_REF, "description": "The request it is filed under."},
            "csrf_token": {"type": "string", "description": "For the filing POST."},
        },
    },
    "FilingAnswer": {
        "type": "object", "required": ["request"],
        "properties": {"request": {**REQUEST_REF, "description": "null: not a request."}},
    },
}
AUTHOR_SECURITY = [{"authorSession": []}]


def author_paths() -> dict[str, Any]:
    """GET /moderate/comments/{comment_id} (JSON) and POST …/request: filing, for scripts."""
    unknown = _error("No such comment.")
    return {
        "/moderate/comments/{comment_id}": {
            "get": {
                "operationId": "getCommentFiling", "tags": ["author"],
                "summary": "A comment, its ranked request suggestions and the request it is "
                           "filed under (send Accept: application/json).",
                "security": AUTHOR_SECURITY,
                "parameters": [COMMENT_ID_PARAMETER],
                "responses": {
                    "200": _json(_ref("FilingView"), "The comment and what to file it under."),
                    "302": {"description": "Not signed in: to the sign-in page."},
                    "404": unknown,
                },
            },
        },
        "/moderate/comments/{comment_id}/request": {
            "post": {
                "operationId": "fileComment", "tags": ["author"],
                "summary": "File the comment under a request, a new one, or none.",
                "security": AUTHOR_SECURITY,
                "parameters": [COMMENT_ID_PARAMETER, {
                    "name": "X-CSRFToken", "in": "header", "required": False,
                    "schema": {"type": "string"},
                    "description": "The csrf_token of the JSON view (or the form field)."}],
                "requestBody": {"required": True, "content": {
                    "application/x-www-form-urlencoded": {"schema": {
                        "type": "object", "required": ["choice"],
                        "properties": {
                            "choice": {"type": "string",
                                       "description": "A request id, \"new\" or \"none\"."},
                            "label": {"type": "string", "maxLength": 120,
                                      "description": "The new request's label."},
                            "csrf_token": {"type": "string"},
                        },
                    }},
                }},
                "responses": {
                    "200": _json(_ref("FilingAnswer"), "Filed (with Accept: "
                                 "application/json; else 303 back to the page)."),
                    "303": {"description": "Filed; back to the comment's page (or `next`)."},
                    "400": _error("No valid CSRF token."),
                    "401": _error("Not signed in."),
                    "404": unknown,
                    "409": _error("A spam or withdrawn comment is not filed."),
                    "422": _error("An unknown request id, or an empty label for new."),
                },
            },
        },
    }


@cache
def openapi_document() -> dict[str, Any]:
    """The whole document; built once per process."""
    common_errors = {
        "400": _error("Malformed JSON, invalid UTF-8 or wrong content type."),
        "404": _error("No such thread."),
        "413": _error("The body is larger than 64 KiB."),
        "503": _error("The manifest or the store is unavailable."),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tellmemore comment service",
            "version": "1",
            "description": "Readers' comments, each queued until the author replies.",
        },
        "paths": {
            "/api/threads/{thread}": {
                "get": {
                    "operationId": "getThread",
                    "summary": "The public thread as a tree.",
                    "parameters": [THREAD_PARAMETER],
                    "responses": {
                        "200": _json(_ref("Thread"), "The thread; carries an ETag."),
                        "304": {"description": "Not modified since the ETag sent."},
                        "404": _error("No such thread."),
                        "503": common_errors["503"],
                    },
                },
            },
            "/api/threads/{thread}/comments": {
                "post": {
                    "operationId": "createComment",
                    "summary": "Post a comment; it waits in the author's reply queue.",
                    "parameters": [THREAD_PARAMETER],
                    "requestBody": {"required": True, "content": {
                        "application/json": {"schema": _ref("NewComment")}}},
                    "responses": {
                        "201": _json(_ref("CreatedComment"), "Stored, with an edit token."),
                        **common_errors,
                        "422": _error("A field was refused; fields says which and why."),
                        "429": _error("Too many comments from this client; see Retry-After."),
                    },
                },
            },
            "/threads/{thread}/comments": {
                "post": {
                    "operationId": "createCommentFromForm",
                    "summary": "Post a comment from a plain HTML form (no JavaScript).",
                    "parameters": [THREAD_PARAMETER],
                    "requestBody": {"required": True, "content": {
                        "application/x-www-form-urlencoded": {"schema": _ref("NewComment")}}},
                    "responses": {
                        "303": {"description": "Stored; back to the article with a notice."},
                        "400": {"description": "Malformed form (HTML page)."},
                        "404": {"description": "No such thread (HTML page)."},
                        "413": {"description": "Too large (HTML page)."},
                        "422": {"description": "A field was refused (HTML page with the form)."},
                        "429": {"description": "Too many comments (HTML page)."},
                        "503": {"description": "Unavailable (HTML page)."},
                    },
                },
            },
            "/api/counts": {
                "get": {
                    "operationId": "getCounts",
                    "summary": "Public comment counts of several threads.",
                    "parameters": [{
                        "name": "thread", "in": "query", "required": True,
                        "schema": {"type": "array", "items": {"type": "string"},
                                   "maxItems": 100},
                        "style": "form", "explode": True,
                    }],
                    "responses": {
                        "200": _json(_ref("Counts"), "Counts; null for unknown threads."),
                        # gunicorn answers this itself (HTML), before the service sees it.
                        "400": {"description": "The request line is longer than the server "
                                               "takes (about 4 KiB): ask for fewer threads."},
                        "422": _error("No thread named, or more than 100."),
                        "503": common_errors["503"],
                    },
                },
            },
            "/api/public-export": {
                "get": {
                    "operationId": "getPublicExport",
                    "summary": "Every article's public thread, for baking into built pages.",
                    "responses": {
                        "200": _json(_ref("PublicExport"), "All public threads."),
                        "503": common_errors["503"],
                    },
                },
            },
            "/api/listening": {
                "get": {
                    "operationId": "getListening",
                    "summary": "The site's public listening figures (at most "
                               "LISTENING_CACHE_SECONDS old, a minute by default).",
                    "responses": {
                        "200": _json({"type": "object", "required": ["listening"],
                                      "properties": {"listening": _ref("SiteListening")},
                                      "additionalProperties": False}, "The figures, or null."),
                        "503": common_errors["503"],
                    },
                },
            },
            "/api/comments/{comment_id}": {
                "patch": {
                    "operationId": "editComment",
                    "summary": "Edit one's own comment within 15 minutes.",
                    "parameters": [COMMENT_ID_PARAMETER, EDIT_TOKEN_PARAMETER],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"type": "object", "required": ["body"], "properties": {
                            "body": {"type": "string", "maxLength": MAX_BODY},
                            "edit_token": {"type": "string"}}}}}},
                    "responses": {
                        "200": _json(_ref("CommentResult"), "Edited."),
                        "400": common_errors["400"],
                        "413": common_errors["413"],
                        "403": _error("No valid edit token, or the 15 minutes have passed."),
                        "404": _error("No such comment."),
                        "409": _error("The author has replied to or published the comment: "
                                      "it can no longer be changed."),
                        "422": _error("The new body was refused."),
                        "503": common_errors["503"],
                    },
                },
                "delete": {
                    "operationId": "withdrawComment",
                    "summary": "Withdraw one's own comment within 15 minutes.",
                    "parameters": [COMMENT_ID_PARAMETER, EDIT_TOKEN_PARAMETER],
                    "requestBody": {"required": False, "content": {"application/json": {
                        "schema": {"type": "object", "properties": {
                            "edit_token": {"type": "string"}}}}}},
                    "responses": {
                        "200": _json(_ref("CommentResult"), "Withdrawn."),
                        "400": common_errors["400"],
                        "413": common_errors["413"],
                        "403": _error("No valid edit token, or the 15 minutes have passed."),
                        "404": _error("No such comment."),
                        "409": _error("The author has replied to or published the comment: "
                                      "it can no longer be withdrawn."),
                        "503": common_errors["503"],
                    },
                },
            },
            "/api/form-token": {
                "get": {
                    "operationId": "getFormToken",
                    "summary": "A signed token recording when the form was shown.",
                    "responses": {"200": _json(_ref("FormToken"), "A fresh token.")},
                },
            },
            "/api/openapi.json": {
                "get": {
                    "operationId": "getOpenAPI",
                    "summary": "This document.",
                    "responses": {"200": {"description": "The OpenAPI document."}},
                },
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "Whether the service can take comments.",
                    "responses": {
                        "200": _json(_ref("Health"), "Ready."),
                        "503": _json(_ref("Health"), "Not ready, with the reason."),
                    },
                },
            },
            **author_paths(),
        },
        "components": {
            "schemas": {**SCHEMAS, **AUTHOR_SCHEMAS},
            "securitySchemes": {"authorSession": {
                "type": "apiKey", "in": "cookie", "name": "tellmemore_session",
                "description": "The author's session, from signing in at /moderate/sign-in.",
            }},
        },
    }
