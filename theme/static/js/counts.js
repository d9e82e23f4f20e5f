/* tellmemore comment counts on lists of articles: every `.comment-count[data-thread]` link on
   the page is filled from ONE request to the comment service's /api/counts. Without scripts,
   or when the service does not answer, the links keep their neutral "Comments" text. */
(() => {
  'use strict';
  const script = document.currentScript;
  const links = [...document.querySelectorAll('.comment-count[data-thread]')];
  if (!script || !links.length || !window.fetch) return;
  let strings = {};
  try { strings = JSON.parse(document.getElementById('tellmemore-strings').textContent).strings || {}; } catch (e) { /* English */ }
  const t = (text, count) => (strings[text] || text).replace('{count}', count);
  const threads = [...new Set(links.map((a) => a.dataset.thread))].slice(0, 100);
  const query = threads.map((thread) => 'thread=' + encodeURIComponent(thread)).join('&');
  fetch(script.dataset.service.replace(/\/+$/, '') + '/api/counts?' + query)
    .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
    .then((answer) => {
      for (const link of links) {
        const c = answer.counts && answer.counts[link.dataset.thread];
        const text = link.querySelector('.comment-count__text');
        if (!c || !text) continue;
        const parts = [];
        if (c.comments) parts.push(t(c.comments === 1 ? '{count} comment' : '{count} comments', c.comments));
        if (c.waiting) parts.push(t('{count} waiting for a reply', c.waiting));
        text.textContent = parts.join(', ') || t('No comments yet', 0);
        link.dataset.comments = c.comments;
        link.dataset.waiting = c.waiting;
      }
    })
    .catch(() => { /* the neutral link stays */ });
})();
