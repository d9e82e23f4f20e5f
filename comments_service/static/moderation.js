// Keyboard shortcuts and a live Markdown preview for the moderation pages.
// Everything here is optional: the pages work as plain HTML forms without it.
(function () {
  "use strict";

  function typing(target) {
    return target && (target.isContentEditable ||
      ["INPUT", "TEXTAREA", "SELECT"].indexOf(target.tagName) !== -1);
  }

  function go(id) {
    var link = document.getElementById(id);
    if (link) { window.location.assign(link.href); }
  }

  function submit(formId) {
    var form = document.getElementById(formId);
    if (form) { form.requestSubmit ? form.requestSubmit() : form.submit(); }
  }

  // On the queue, j/k move between comments and Enter opens the focused one.
  var cards = Array.prototype.slice.call(document.querySelectorAll("[data-keyboard-list] .card__link"));
  function moveInList(step) {
    if (!cards.length) { return; }
    var index = cards.indexOf(document.activeElement);
    var next = index === -1 ? 0 : Math.min(cards.length - 1, Math.max(0, index + step));
    cards[next].focus();
    cards[next].closest(".card").scrollIntoView({ block: "nearest" });
  }

  // Single-key shortcuts can be turned off (WCAG 2.1.4), remembered in this browser.
  var OFF_KEY = "tellmemore-single-keys-off";
  var offBox = document.getElementById("single-key-shortcuts-off");
  function singleKeysOff() {
    try { return window.localStorage.getItem(OFF_KEY) === "1"; } catch (error) { return false; }
  }
  if (offBox) {
    offBox.checked = singleKeysOff();
    offBox.addEventListener("change", function () {
      try { window.localStorage.setItem(OFF_KEY, offBox.checked ? "1" : "0"); } catch (error) { /* private mode */ }
    });
  }

  var replyBox = document.getElementById("reply-body");
  var replyNext = document.getElementById("reply-next");

  // Filing under a request (#18): 1-5, n, 0 pick a choice; with Alt also while typing.
  function fileKey(key) {
    var choice = document.querySelector('#filing input[data-filing-key="' + key + '"]');
    if (!choice) { return false; }
    choice.checked = true;
    if (key === "n") {
      var label = document.getElementById("filing-label");
      if (label) { label.focus(); label.select(); }
    }
    return true;
  }

  document.addEventListener("keydown", function (event) {
    var replyForm = document.getElementById("reply-form");
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter" && replyBox && replyForm &&
        replyForm.contains(document.activeElement)) {
      event.preventDefault();
      if (replyNext) { replyNext.click(); }
      return;
    }
    // Alt+digit arrives as a layout's own character on some systems: read the key's code.
    if (event.altKey && !event.ctrlKey && !event.metaKey) {
      var code = event.code || "";
      var key = code.indexOf("Digit") === 0 ? code.slice(5) : (code === "KeyN" ? "n" : "");
      if (key && fileKey(key)) { event.preventDefault(); }
      return;
    }
    if (!event.ctrlKey && !event.metaKey && !typing(event.target) && !singleKeysOff() &&
        /^[0-5n]$/.test(event.key) && fileKey(event.key)) {
      event.preventDefault();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    if (singleKeysOff()) { return; }
    switch (event.key) {
      case "j":
        if (cards.length) { moveInList(1); } else { go("next-comment"); }
        break;
      case "k":
        if (cards.length) { moveInList(-1); } else { go("previous-comment"); }
        break;
      case "r":
        if (replyBox) {
          event.preventDefault();
          replyBox.focus();
          // Continue the draft (kept after a preview or the nudge), not type in front of it.
          replyBox.setSelectionRange(replyBox.value.length, replyBox.value.length);
        }
        else { var start = document.getElementById("start-replying"); if (start) { start.click(); } }
        break;
      case "s":
        if (document.getElementById("spam-form")) { submit("spam-form"); }
        break;
      case "a":
        if (document.getElementById("approve-form")) { submit("approve-form"); }
        break;
      case "?":
        var help = document.getElementById("shortcuts");
        if (help) { help.open = !help.open; }
        break;
      default:
        return;
    }
  });

  // Arriving to answer a comment (#24): the reply box has the focus (autofocus), the caret at
  // the end of any draft, the comment and the box both in view, and a screen reader is told
  // where the focus went and what Ctrl+Enter does.
  if (replyBox && replyBox.hasAttribute("data-focus-on-arrival")) {
    if (document.activeElement !== replyBox) { replyBox.focus({ preventScroll: true }); }
    replyBox.setSelectionRange(replyBox.value.length, replyBox.value.length);
    var card = document.querySelector("article.card");
    var top = card ? card.getBoundingClientRect().top + window.scrollY - 8 : 0;
    var bottom = replyBox.getBoundingClientRect().bottom + window.scrollY + 8;
    // The comment's top, unless that would hide the reply box: then the box, at the bottom.
    window.scrollTo(0, bottom - top <= window.innerHeight ? top : bottom - window.innerHeight);
    var arrival = document.getElementById("arrival");
    if (arrival) {
      // Filled after load, so that the live region announces it.
      window.setTimeout(function () { arrival.textContent = arrival.getAttribute("data-text"); }, 50);
    }
  }

  // Live preview: ask the service to render the draft exactly as it will be published.
  var form = document.getElementById("reply-form");
  var preview = document.getElementById("preview");
  var previewBody = document.getElementById("preview-body");
  if (form && replyBox && preview && previewBody) {
    var timer = null;
    var token = form.querySelector("input[name=csrf_token]");
    replyBox.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(function () {
        var body = new URLSearchParams();
        body.set("body", replyBox.value);
        fetch(form.action.replace(/comments\/[^/]+\/reply$/, "preview"), {
          method: "POST",
          credentials: "same-origin",
          headers: { "X-CSRFToken": token ? token.value : "" },
          body: body
        }).then(function (response) {
          return response.ok ? response.json() : null;
        }).then(function (data) {
          if (!data) { return; }
          previewBody.innerHTML = data.html;  // sanitised by the service (render.py)
          preview.hidden = replyBox.value.trim() === "";
        }).catch(function () { /* the Preview button still works */ });
      }, 300);
    });
  }
})();
