"""Script-injection payloads for anything that shows reader-written text.

`PAYLOADS` is plain data, shared by the renderer's unit tests and by browser tests: every
payload that could run script does so by calling ``alert(1)``, so a page test can replace
``window.alert`` (or listen for dialogs) and fail if it is ever called. The list mixes raw
HTML, Markdown link syntax and encoding tricks; none of them may produce an executable
element, an event-handler attribute, a ``style`` attribute or a non-http(s)/mailto link.
"""

from __future__ import annotations

PAYLOADS: list[str] = [
    # <script> variants: case, attributes, nesting, broken and unterminated tags.
    "<script>alert(1)</script>",
    "<SCRIPT>alert(1)</SCRIPT>",
    "<ScRiPt src=https://evil.example/x.js></ScRiPt>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<script>alert(1)",
    "<script/src=data:,alert(1)></script>",
    "<<script>script>alert(1)<</script>/script>",
    "</p><script>alert(1)</script><p>",
    # Event-handler attributes.
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=x OnErRoR=alert(1)>",
    "<img src=x onerror=&#97;lert(1)>",
    "<svg onload=alert(1)>",
    "<body onload=alert(1)>",
    "<details open ontoggle=alert(1)>",
    '<a href="https://example.org" onclick="alert(1)">click</a>',
    '<div onmouseover="alert(1)">hover me</div>',
    "<input autofocus onfocus=alert(1)>",
    # Dangerous schemes in Markdown inline links.
    "[x](javascript:alert(1))",
    "[x](JavaScript:alert(1))",
    "[x](  javascript:alert(1))",
    "[x](<javascript:alert(1)>)",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](vbscript:msgbox(1))",
    '[x](javascript:alert(1) "title")',
    "[x](javascript://example.org/%0aalert(1))",
    # Scheme obfuscation: character references, escapes, whitespace and invisible characters.
    "[x](jav&#x61;script:alert(1))",
    "[x](&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1))",
    "[x](javascript&colon;alert(1))",
    "[x](java\\script:alert(1))",
    "[x](java\tscript:alert(1))",
    "[x](java\nscript:alert(1))",
    "[x](\x01javascript:alert(1))",
    "[x](java\u200bscript:alert(1))",
    "[x](\u200bjavascript:alert(1))",
    "[x](\ufeffjavascript:alert(1))",
    # Fullwidth "javascript": not a scheme to a browser, and not one here either.
    "[x](\uff4a\uff41\uff56\uff41\uff53\uff43\uff52\uff49\uff50\uff54:alert(1))",
    # Reference-style links and autolinks.
    "[x][evil]\n\n[evil]: javascript:alert(1)",
    '[evil]\n\n[evil]: JAVASCRIPT:alert(1) "t"',
    "[x][d]\n\n[d]: data:text/html,<script>alert(1)</script>",
    "<javascript:alert(1)>",
    "<javascript://example.org/%0aalert(1)>",
    "<data:text/html,<script>alert(1)</script>>",
    # Breaking out of attributes through a link's URL or title.
    '[x](https://example.org" onclick="alert(1))',
    '[x](https://example.org "a" onmouseover="alert(1)")',
    "[x](https://example.org 'a\" onmouseover=\"alert(1)')",
    '[x](https://example.org "><script>alert(1)</script>")',
    '"><script>alert(1)</script>',
    "'><img src=x onerror=alert(1)>",
    # Images must never become <img>.
    "![x](https://example.org/a.png)",
    "![x](javascript:alert(1))",
    '![x](x "onerror=alert(1)")',
    "![x][pic]\n\n[pic]: https://example.org/a.png",
    # SVG and MathML.
    "<svg><script>alert(1)</script></svg>",
    '<svg><a xlink:href="javascript:alert(1)"><text x="20" y="20">x</text></a></svg>',
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    # Frames, objects and documents.
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<form action="javascript:alert(1)"><button>go</button></form>',
    "<button formaction=javascript:alert(1)>go</button>",
    # Style-based.
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<p style="x:expression(alert(1))">x</p>',
    "<style>@import 'javascript:alert(1)';</style>",
    '<link rel=stylesheet href="javascript:alert(1)">',
    # Comments, CDATA and parser confusion.
    "<!--<script>alert(1)</script>-->",
    "<!-- --!><script>alert(1)</script> -->",
    "<![CDATA[<script>alert(1)</script>]]>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<textarea></textarea><script>alert(1)</script>",
    '<a href="javascript&#58;alert(1)">x</a>',
    # Markdown structures wrapping raw HTML.
    "> <script>alert(1)</script>",
    "- <img src=x onerror=alert(1)>\n- item",
    "*<script>alert(1)</script>*",
    "**[x](javascript:alert(1))**",
    "[<img src=x onerror=alert(1)>](https://example.org)",
    '<div markdown="1">*x*<script>alert(1)</script></div>',
    # Code containing HTML: must come out escaped, inside <code>.
    "`<script>alert(1)</script>`",
    "``<img src=x onerror=alert(1)>``",
    "```html\n<script>alert(1)</script>\n```",
    "``` onload=alert(1)\ncode\n```",
    '```{ .x onclick="alert(1)" }\ncode\n```',
    "    <iframe src=javascript:alert(1)>",
    # Template syntax (inert, must stay text) and placeholders Python-Markdown uses inside.
    "{{7*7}} {% raw %}{{ config }}{% endraw %} ${7*7} #{7*7}",
    "\x02wzxhzdk:0\x03 <script>alert(1)</script>",
    "\x00<script>alert(1)</script>",
    # Unicode tricks.
    "\ufe64script\ufe65alert(1)\ufe64/script\ufe65",
    "<scr\u200bipt>alert(1)</scr\u200bipt>",
    "\u202e>tpircs/<)1(trela>tpircs<",
]
