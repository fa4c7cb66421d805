/* One submission per form: every POST form carries a one-time token (_once) made when the page
   loads, so a double click, or Back and submit again, reaches the server as the same action and
   gets the first answer; the submit buttons are disabled while the request is in flight.
   wxcrm.onceKey(method, url, body) gives fetch() calls the same property (Idempotency-Key). */
(function () {
  function token() {
    if (window.crypto && crypto.getRandomValues) {
      var a = new Uint32Array(4); crypto.getRandomValues(a);
      return Array.prototype.map.call(a, function (n) { return n.toString(36); }).join('');
    }
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }
  function hash(text) {  /* cyrb53: a short, stable digest of a request */
    var h1 = 0xdeadbeef, h2 = 0x41c6ce57;
    for (var i = 0; i < text.length; i++) {
      var ch = text.charCodeAt(i);
      h1 = Math.imul(h1 ^ ch, 2654435761); h2 = Math.imul(h2 ^ ch, 1597334677);
    }
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    return (h2 >>> 0).toString(36) + (h1 >>> 0).toString(36);
  }
  var pageKey = token();
  function addToken(form) {
    if ((form.getAttribute('method') || '').toLowerCase() !== 'post' || form.querySelector('input[name=_once]')) { return; }
    var input = document.createElement('input');
    input.type = 'hidden'; input.name = '_once'; input.value = token();
    form.appendChild(input);
  }
  function buttons(form) { return form.querySelectorAll('button:not([type=button]), input[type=submit]'); }
  document.querySelectorAll('form').forEach(addToken);
  document.addEventListener('submit', function (e) {
    var form = e.target;
    if (form.dataset.inFlight) { e.preventDefault(); return; }
    addToken(form);
    form.dataset.inFlight = '1';
    setTimeout(function () { buttons(form).forEach(function (b) { b.disabled = true; }); }, 0);
    setTimeout(function () { delete form.dataset.inFlight; buttons(form).forEach(function (b) { b.disabled = false; }); }, 10000);
  }, true);
  window.addEventListener('pageshow', function (e) {  /* Back from the result page: buttons usable, same tokens */
    if (e.persisted) { document.querySelectorAll('form').forEach(function (f) { delete f.dataset.inFlight; buttons(f).forEach(function (b) { b.disabled = false; }); }); }
  });
  function signature(body) {
    if (typeof FormData !== 'undefined' && body instanceof FormData) {
      var parts = [];
      body.forEach(function (v, k) { parts.push(k + '=' + (typeof v === 'string' ? v : [v.name, v.size, v.lastModified].join(':'))); });
      return parts.join('&');
    }
    return JSON.stringify(body === undefined ? null : body);
  }
  function touched(el) {  /* changed since the page was parsed */
    if (el.type === 'checkbox' || el.type === 'radio') { return el.checked !== el.defaultChecked; }
    if (el.tagName === 'SELECT') {
      var opts = Array.prototype.slice.call(el.options);
      if (el.multiple) { return opts.some(function (o) { return o.selected !== o.defaultSelected; }); }
      var first = opts.findIndex(function (o) { return o.defaultSelected; });
      return el.selectedIndex !== (first < 0 ? 0 : first);
    }
    return 'defaultValue' in el && el.value !== el.defaultValue;
  }
  /* a refused form comes back as it was sent, with the fields in error marked */
  var kept = document.getElementById('form-retry');
  if (kept) {
    try {
      var retry = JSON.parse(kept.textContent), target = null, best = -1;
      /* of the forms that post there (a page may have a row's small forms too), the one holding most of what was sent */
      document.querySelectorAll('form').forEach(function (f) {
        if (f.getAttribute('action') !== retry.action) { return; }
        var held = Object.keys(retry.values || {}).filter(function (name) { return f.querySelector('[name="' + name + '"]'); }).length;
        if (held > best) { target = f; best = held; }
      });
      if (target) {
        Object.keys(retry.values || {}).forEach(function (name) {
          var els = target.querySelectorAll('[name="' + name + '"]'), vals = retry.values[name];
          els.forEach(function (el, i) {
            if (touched(el)) { return; }  /* typed into before this script ran (a slow phone): what was typed wins */
            if (el.type === 'checkbox' || el.type === 'radio') { el.checked = vals.indexOf(el.value) >= 0; }
            else if (el.type !== 'file' && el.type !== 'hidden') { el.value = vals[Math.min(i, vals.length - 1)]; }
          });
        });
        Object.keys(retry.fields || {}).forEach(function (name) {
          var el = target.querySelector('[name="' + name.split('.')[0] + '"]');
          if (!el) { return; }
          el.classList.add('invalid'); el.setAttribute('aria-invalid', 'true');
          var note = document.createElement('span'); note.className = 'field-error'; note.textContent = retry.fields[name];
          el.insertAdjacentElement('afterend', note);
        });
      }
    } catch (e) { /* a page without the form: nothing to fill */ }
  }
  window.wxcrmOnce = { key: function (method, url, body) { return 'p' + pageKey + '-' + hash(method + ' ' + url + ' ' + signature(body)); } };
})();
