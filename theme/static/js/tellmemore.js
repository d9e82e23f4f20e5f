/* tellmemore comment widget, no build step. Reader text only via textContent and attributes;
   the one innerHTML is the service's sanitised html. `node` mirrors partials/comment_tree.html,
   and [data-l] the listening figures (partials/comments.html, base.html). */
(() => {
  'use strict';
  const d = document;
  const $ = (id) => d.getElementById(id);
  const section = $('comments'), form = $('comment-form'), list = $('comment-list');
  if (!section || !form || !list || !window.fetch) return;

  let strings = {};
  try { strings = JSON.parse($('tellmemore-strings').textContent).strings || {}; } catch (e) { /* English */ }
  const t = (text, fields = {}) =>
    (strings[text] || text).replace(/\{(\w+)\}/g, (all, key) => (key in fields ? fields[key] : all));
  const when = new Intl.DateTimeFormat(navigator.language, { dateStyle: 'medium', timeStyle: 'short' });
  const K = 'tellmemore:';
  const load = (key) => { try { return JSON.parse(localStorage.getItem(K + key)); } catch (e) { return null; } };
  const keep = (key, value) => {
    try {
      if (value == null) localStorage.removeItem(K + key);
      else localStorage.setItem(K + key, JSON.stringify(value));
    } catch (e) { /* storage refused: nothing is remembered */ }
  };
  const h = (tag, props, ...children) => {
    const el = d.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value == null || value === false) continue;
      if (key === 'text') el.textContent = value;
      else if (key === 'on') el.addEventListener('click', value);
      else el.setAttribute(key, value === true ? '' : value);
    }
    el.append(...children.filter((child) => child != null && child !== false));
    return el;
  };
  const button = (text, on, label) => h('button', { type: 'button', class: 'link-button', on, text, 'aria-label': label });

  const api = section.dataset.service.replace(/\/+$/, '') + '/api/';
  const thread = section.dataset.thread;
  const enc = encodeURIComponent;
  const call = async (path, options) => {
    const response = await fetch(api + path, options);
    let body = {};
    try { body = await response.json(); } catch (e) { /* no JSON body */ }
    return { status: response.status, ok: response.ok, body, retry: response.headers.get('Retry-After') };
  };
  const json = (method, body, headers) =>
    ({ method, headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });

  // The reader's own comments, every thread: id → {t: thread, k: edit token, u: editable until
  // (this clock), b: Markdown sent, at: sent at, c: the comment as the service returned it}.
  const mine = load('mine') || {};
  for (const [id, m] of Object.entries(mine)) if (!m.c || Date.now() - m.at > 30 * 864e5) delete mine[id];
  const saveMine = () => keep('mine', mine);
  const editable = (id) => mine[id] && mine[id].u > Date.now();

  const F = form.elements;
  const note = $('comments-note'), notice = $('comment-form-notice'), alert = $('comment-form-alert');
  const heading = $('comment-form-heading'), send = form.querySelector('[type=submit]');
  const baked = list.cloneNode(true);
  const home = d.createComment(' comment form ');
  form.after(home);
  let payload = null, replyTo = null, timer = 0, refocus = null;

  const question = (id) => F.question.options && [...F.question.options].find((o) => o.value && o.value === id);
  const summary = (n, w) => h('p', {
    class: 'comments__count',
    text: n || w
      ? [n && t(n === 1 ? '{count} comment' : '{count} comments', { count: n }),
        w && t('{count} waiting for a reply', { count: w })].filter(Boolean).join(', ')
      : t('No comments yet'),
  });

  function node(c, live, waiting) {
    const li = h('li', {
      class: 'comment' + (c.is_author ? ' comment--author' : '') + (c.removed ? ' comment--removed' : '') + (waiting ? ' comment--waiting' : ''),
      id: 'comment-' + c.id, 'data-id': c.id,
    });
    if (c.removed) {
      li.append(h('p', { class: 'comment__removed', text: t('This comment was withdrawn.') }));
    } else {
      const site = /^https?:\/\//i.test(c.website || '') && c.website;
      const q = c.question && question(c.question);
      const text = h('div', { class: 'comment__text' });
      text.innerHTML = c.html;
      const foot = h('footer', { class: 'comment__foot' },
        h('a', { class: 'comment__date', href: '#comment-' + c.id },
          h('time', { datetime: c.created, text: when.format(new Date(c.created)) })),
        c.edited && h('span', { class: 'comment__edited', text: t('edited') }));
      li.append(h('article', { class: 'comment__card' },
        h('header', { class: 'comment__head' },
          h(site ? 'a' : 'span', { class: 'comment__name', href: site, rel: site && 'nofollow ugc noopener', text: c.name }),
          c.is_author && h('span', { class: 'badge badge--author', text: t('Author') }),
          waiting && h('span', { class: 'badge badge--waiting', text: t("Waiting for the author's reply") })),
        q && h('p', { class: 'comment__question' }, t('Answering:') + ' ', h('a', { href: '#q-' + c.question, text: q.text })),
        text, foot));
      if (live) {
        const actions = h('span', { class: 'comment__actions' });
        if (!waiting) actions.append(button(t('Reply'), () => openReply(c.id), t('Reply to {name}', { name: c.name })));
        // Replied or published by the author: the service refuses changes (409); say why.
        const r = (c.replies || []).some((x) => x.is_author), m = mine[c.id];
        if (editable(c.id) && (r || (!m.c.public && c !== m.c))) actions.append(h('span', { class: 'comment__locked', text: r ? t('The author has replied to this comment, so it can no longer be changed.') : t('The author has published this comment, so it can no longer be changed.') }));
        else if (editable(c.id)) actions.append(button(t('Edit'), () => edit(c.id, li)), button(t('Withdraw'), () => withdraw(c.id, actions)));
        foot.append(actions);
      }
    }
    if (c.replies && c.replies.length) li.append(tree(c.replies, live));
    return li;
  }
  const tree = (comments, live) => h('ol', { class: 'comment-tree' }, ...comments.map((c) => node(c, live)));
  const find = (root, id) => root.querySelector('[data-id="' + CSS.escape(id) + '"]');

  // Built detached, then swapped in: one change to the page, no duplicates.
  function render() {
    const live = !!payload;
    if (live) for (const k in payload.listening) for (const e of d.querySelectorAll(`[data-l=${k}]`)) e.textContent = payload.listening[k];
    const box = live ? h('div', null, summary(payload.count, payload.waiting), payload.comments.length > 0 && tree(payload.comments, true))
      : baked.cloneNode(true);
    const now = Date.now();
    let next = Infinity;
    for (const [id, m] of Object.entries(mine)) {
      if (m.t !== thread) continue;
      if (m.u > now) next = Math.min(next, m.u);
      if (find(box, id)) {
        if (m.u <= now) delete mine[id]; // public, no longer editable: forget it
        continue;
      }
      const parent = m.c.parent && find(box, m.c.parent);
      let ol = parent ? parent.querySelector(':scope > ol') : box.querySelector(':scope > ol');
      if (!ol) (parent || box).append(ol = h('ol', { class: 'comment-tree' }));
      ol.append(node(m.c, live, !m.c.public));
    }
    saveMine();
    clearTimeout(timer);
    if (next < Infinity) timer = setTimeout(render, next - now + 500);
    const active = d.activeElement;
    if (list.contains(form)) home.before(form);
    list.replaceChildren(...box.childNodes);
    place();
    if (form.contains(active)) active.focus({ preventScroll: true });
    if (refocus) focusOn(refocus);
    refocus = null;
  }

  const failed = t('The latest comments could not be loaded just now.');
  async function refresh() {
    list.style.minHeight = list.offsetHeight + 'px';
    list.setAttribute('aria-busy', 'true');
    try {
      const r = await call('threads/' + enc(thread), {});
      if (!r.ok) throw new Error(r.status);
      payload = r.body;
      if (note.textContent === failed) note.textContent = '';
    } catch (e) {
      note.textContent = failed;
    }
    render();
    list.style.minHeight = '';
    list.removeAttribute('aria-busy');
    section.dataset.state = payload ? 'live' : 'offline';
  }

  const cancel = button(t('Cancel reply'), () => { const id = replyTo; closeReply(); focusOn(id); });
  cancel.className = 'button button--quiet';
  cancel.hidden = true;
  send.after(cancel);

  const say = (text) => { alert.textContent = ''; notice.textContent = text; };
  const fail = (text) => { notice.textContent = ''; alert.textContent = text; };
  const value = (name) => (F[name] ? F[name].value.trim() : '');
  const draftKey = 'draft:' + thread;
  const saveDraft = () => keep(draftKey, F.body.value.trim() ? { b: F.body.value, q: F.question.value, p: F.parent.value } : null);
  const focusOn = (id) => { const b = find(list, id) && find(list, id).querySelector('.comment__actions button'); if (b) b.focus(); };

  // The form lives at home, or under the comment it answers.
  function place() {
    const li = replyTo && find(list, replyTo);
    const active = d.activeElement;
    if (li && payload) {
      const name = li.querySelector('.comment__name').textContent;
      if (form.previousElementSibling !== li.firstElementChild) li.firstElementChild.after(form);
      heading.textContent = t('Reply to {name}', { name });
      F.parent.value = replyTo;
    } else {
      replyTo = null;
      F.parent.value = '';
      if (form.parentNode !== home.parentNode) home.before(form);
      heading.textContent = t('Add a comment');
    }
    cancel.hidden = !replyTo;
    if (form.contains(active) && d.activeElement !== active) active.focus({ preventScroll: true });
  }
  function openReply(id) {
    say('');
    replyTo = id;
    place();
    F.body.focus();
    saveDraft();
  }
  function closeReply() {
    replyTo = null;
    place();
    saveDraft();
  }

  // The spam check wants the form token from when the form was first used, not from sending.
  let token = null, tokenAsked = false;
  form.addEventListener('focusin', () => {
    if (tokenAsked) return;
    tokenAsked = true;
    call('form-token', { cache: 'no-store' }).then((r) => { token = r.body.form_token || null; tokenAsked = !!token; }, () => { tokenAsked = false; });
  });

  function clearError(el) {
    if (!el || !el.id) return;
    const error = $(el.id + '-error');
    if (error) error.remove();
    el.removeAttribute('aria-invalid');
    const rest = (el.getAttribute('aria-describedby') || '').replace(el.id + '-error', '').trim();
    if (rest) el.setAttribute('aria-describedby', rest); else el.removeAttribute('aria-describedby');
  }
  function showErrors(fields) {
    let first = null;
    const other = [];
    for (const [name, message] of Object.entries(fields)) {
      const el = F[name];
      if (!el || !el.id || el.type === 'hidden' || el.closest('[hidden]')) { other.push(t(message)); continue; }
      const id = el.id + '-error';
      el.setAttribute('aria-invalid', 'true');
      el.setAttribute('aria-describedby', (id + ' ' + (el.getAttribute('aria-describedby') || '')).trim());
      el.after(h('p', { class: 'field__error', id, text: t(message) }));
      first = first || el;
    }
    fail([t('Your comment was not sent: please check what is marked.'), ...other].join(' '));
    if (first) first.focus();
  }

  const remember = $('comment-remember');
  const identity = ['name', 'email', 'website'];
  const syncNotify = () => {
    F.notify.disabled = !value('email');
    if (F.notify.disabled) F.notify.checked = false;
  };
  const rememberNow = () => keep('reader', remember.checked ? Object.fromEntries(identity.map((k) => [k, value(k)])) : null);

  form.addEventListener('input', (e) => {
    clearError(e.target);
    if (e.target === F.email) syncNotify();
    if (e.target === remember || identity.includes(e.target.name)) rememberNow();
    saveDraft();
  });
  form.addEventListener('change', (e) => { if (e.target === remember) rememberNow(); });

  let busy = false;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (busy) return;
    busy = true;
    for (const el of form.querySelectorAll('[aria-invalid]')) clearError(el);
    say('');
    saveDraft();
    rememberNow();
    const body = F.body.value;
    const data = {
      name: value('name'), body, email: value('email') || null, website: value('website') || null,
      parent: value('parent') || null, question: value('question') || null,
      notify: F.notify.checked && !!value('email'), reader_token: readerToken(),
      form_token: token, fax: value('fax'),
    };
    const label = send.textContent;
    send.textContent = t('Sending…');
    form.setAttribute('aria-busy', 'true');
    let r = null;
    try { r = await call('threads/' + enc(thread) + '/comments', json('POST', data)); } catch (err) { /* unreachable */ }
    busy = false;
    send.textContent = label;
    form.removeAttribute('aria-busy');
    if (r && r.status === 201) return sent(r.body, body);
    if (r && r.status === 422 && r.body.fields) return showErrors(r.body.fields);
    fail(r && r.status === 429
      ? t('Too many comments from here just now. Please wait {seconds} seconds and send again; your text is kept.', { seconds: r.retry || 60 })
      : t('Sending failed: the comment service could not be reached. Your text is kept here (also if you reload the page); please try again in a moment.'));
  });

  function sent(result, body) {
    const c = result.comment;
    const until = Date.parse(result.editable_until) - Date.parse(c.created);
    mine[c.id] = { t: thread, k: result.edit_token, u: Date.now() + (until > 0 ? until : 0), b: body, at: Date.now(), c };
    saveMine();
    F.body.value = F.question.value = '';
    keep(draftKey, null);
    replyTo = null;
    render();
    say(c.public
      ? t('Thank you: your comment is published. You can edit or withdraw it for 15 minutes.')
      : t("Thank you: your comment reached the author. Only you see it here, marked as waiting, until it appears with the author's reply."));
    refresh();
  }

  function readerToken() {
    let token = load('reader-token');
    if (!token) keep('reader-token', token = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join(''));
    return token;
  }

  // One's own comments: edit and withdraw while the token lasts.
  function edit(id, li) {
    const m = mine[id];
    const area = h('textarea', { id: 'edit-' + id, rows: 5, required: true, maxlength: 10000 });
    area.value = m.b || '';
    const problem = h('p', { class: 'comment-form__alert', role: 'alert' });
    const box = h('form', { class: 'comment-edit' },
      h('div', { class: 'field' }, h('label', { for: area.id, text: t('Edit your comment') }), area),
      problem,
      h('div', { class: 'comment-form__actions' },
        h('button', { type: 'submit', class: 'button', text: t('Save changes') }),
        h('button', { type: 'button', class: 'button button--quiet', text: t('Cancel'), on: () => { refocus = id; render(); } })));
    box.addEventListener('submit', async (e) => {
      e.preventDefault();
      const r = await call('comments/' + enc(id), json('PATCH', { body: area.value }, { 'X-Edit-Token': m.k })).catch(() => null);
      if (!r || !r.ok) {
        problem.textContent = r && r.body.message ? t(r.body.message) : t('Saving failed: the comment service could not be reached. Please try again in a moment.');
        return;
      }
      Object.assign(m.c, r.body.comment);
      m.b = area.value;
      saveMine();
      note.textContent = t('Your comment was changed.');
      refocus = id;
      render();
      refresh();
    });
    li.querySelector('.comment__text').replaceWith(box);
    li.querySelector('.comment__foot').hidden = true;
    area.focus();
  }

  function withdraw(id, actions) {
    actions.replaceChildren(
      h('span', { text: t('Withdraw this comment?') }),
      button(t('Yes, withdraw it'), async () => {
        const r = await call('comments/' + enc(id), { method: 'DELETE', headers: { 'X-Edit-Token': mine[id].k } }).catch(() => null);
        if (!r || !r.ok) {
          note.textContent = r && r.body.message ? t(r.body.message) : t('Withdrawing failed: the comment service could not be reached. Please try again in a moment.');
          return;
        }
        delete mine[id];
        saveMine();
        note.textContent = t('Your comment was withdrawn.');
        render();
        refresh();
        note.focus();
      }),
      button(t('Keep it'), () => { refocus = id; render(); }));
    actions.querySelector('button').focus();
  }

  (remember.closest('[hidden]') || {}).hidden = false;
  const reader = load('reader');
  if (reader) {
    for (const k of identity) if (F[k] && !F[k].value) F[k].value = reader[k] || '';
    remember.checked = true;
  }
  syncNotify();
  const draft = load(draftKey);
  if (draft && !F.body.value) {
    F.body.value = draft.b;
    if (question(draft.q)) F.question.value = draft.q;
    replyTo = draft.p || null;
  }
  const asked = new URLSearchParams(location.search).get('question');
  if (question(asked)) {
    F.question.value = asked;
    replyTo = null;
  }

  // "Answer this": choose the question and go to the form, without reloading the page.
  d.addEventListener('click', (e) => {
    const link = e.target.closest && e.target.closest('a.answer-this[data-question]');
    if (!link || !question(link.dataset.question) || e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();
    say('');
    closeReply();
    F.question.value = link.dataset.question;
    history.pushState(null, '', '?question=' + enc(link.dataset.question) + '#comment-form');
    form.scrollIntoView({ block: 'start' });
    F.body.focus({ preventScroll: true });
    saveDraft();
  });

  note.tabIndex = -1;
  refresh().then(() => {
    const target = location.hash.length > 1 && $(decodeURIComponent(location.hash.slice(1)));
    if (target && list.contains(target)) target.scrollIntoView();
  });
})();
