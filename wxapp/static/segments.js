/* 客户细分 builder: rows of field / operator / value built from the page's spec, kept in the hidden
   conditions_json field the form posts, and a live count of what they pick (GET, debounced). */
(function () {
  var form = document.getElementById('segment-form');
  if (!form) return;
  var spec = JSON.parse(document.getElementById('segment-spec').textContent);
  var box = document.getElementById('seg-conditions'), hidden = document.getElementById('seg-json');
  var target = document.getElementById('seg-target'), match = document.getElementById('seg-match');
  var countEl = form.querySelector('[data-count]'), unitEl = form.querySelector('[data-unit]');
  var timer = null, seq = 0;

  function fields() { return spec[target.value] || []; }
  function fieldSpec(name) { return fields().filter(function (f) { return f.field === name; })[0] || fields()[0]; }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function valueInput(fs, op, value) {
    if (fs.choices && op === 'in') {  // 属于其中之一 of a closed list (owners, sources, months): pick several, no ids typed
      var picked = (Array.isArray(value) ? value : String(value === undefined || value === null ? '' : value).split(',')).map(String);
      var multi = el('select', { 'class': 'seg-value', 'aria-label': '值（可多选）', multiple: 'multiple', size: String(Math.min(fs.choices.length, 5)) });
      fs.choices.forEach(function (c) { var o = el('option', { value: c[0] }, c[1]); if (picked.indexOf(c[0]) >= 0) o.selected = true; multi.appendChild(o); });
      return multi;
    }
    if (op === 'empty' || fs.choices) {
      var sel = el('select', { 'class': 'seg-value', 'aria-label': '值' });
      var options = op === 'empty' ? [['true', '是'], ['false', '否']] : fs.choices;
      options.forEach(function (c) { var o = el('option', { value: c[0] }, c[1]); if (String(value) === c[0]) o.selected = true; sel.appendChild(o); });
      return sel;
    }
    var hint = op === 'in' ? '多个用逗号分隔' : (op === 'within_days' || op === 'before_days') ? '天数' : (op === 'gte' || op === 'lte') ? '0–100' : '值';
    var input = el('input', { type: 'text', 'class': 'seg-value', placeholder: hint, 'aria-label': '值', maxlength: '200' });
    input.value = value === undefined || value === null ? '' : (Array.isArray(value) ? value.join(',') : value);
    return input;
  }
  function row(c) {
    var r = el('div', { 'class': 'form-row seg-row' });
    var fsel = el('select', { 'class': 'seg-field', 'aria-label': '字段' });
    fields().forEach(function (f) { var o = el('option', { value: f.field }, f.label); if (c && c.field === f.field) o.selected = true; fsel.appendChild(o); });
    var osel = el('select', { 'class': 'seg-op', 'aria-label': '条件' });
    var remove = el('button', { type: 'button', 'class': 'small seg-remove' }, '删除');
    r.appendChild(fsel); r.appendChild(osel);
    function fillOps(keepOp, keepValue) {
      var fs = fieldSpec(fsel.value);
      osel.innerHTML = '';
      fs.ops.forEach(function (o) { var opt = el('option', { value: o[0] }, o[1]); if (keepOp === o[0]) opt.selected = true; osel.appendChild(opt); });
      var old = r.querySelector('.seg-value');
      var input = valueInput(fs, osel.value, keepValue);
      if (old) r.replaceChild(input, old); else r.insertBefore(input, remove);
    }
    r.appendChild(remove);
    fillOps(c && c.op, c && c.value);
    fsel.addEventListener('change', function () { fillOps(); changed(); });
    osel.addEventListener('change', function () { var v = r.querySelector('.seg-value').value; fillOps(osel.value, v); changed(); });
    r.addEventListener('input', changed);
    r.addEventListener('change', changed);
    remove.addEventListener('click', function () { r.remove(); changed(); });
    box.appendChild(r);
  }
  function collect() {
    return Array.prototype.map.call(box.querySelectorAll('.seg-row'), function (r) {
      var v = r.querySelector('.seg-value');
      var value = v.multiple ? Array.prototype.map.call(v.selectedOptions, function (o) { return o.value; }).join(',') : v.value;
      return { field: r.querySelector('.seg-field').value, op: r.querySelector('.seg-op').value, value: value };
    });
  }
  function changed() {
    hidden.value = JSON.stringify(collect());
    clearTimeout(timer);
    timer = setTimeout(count, 300);
  }
  function count() {
    var mine = ++seq;
    var q = '?target=' + encodeURIComponent(target.value) + '&match=' + encodeURIComponent(match.value) + '&conditions=' + encodeURIComponent(hidden.value);
    unitEl.textContent = target.value === 'contact' ? '个联系人' : '个客户';
    fetch(form.dataset.countUrl + q, { credentials: 'same-origin', headers: { 'Accept': 'application/json' } })
      .then(function (r) { return r.json(); })
      .then(function (j) {
        if (mine !== seq) return;  // an older answer arriving late
        countEl.textContent = j.error ? '—' : j.count;
        countEl.title = j.error || '';
        form.querySelector('#seg-count').dataset.error = j.error || '';
        if (j.error) countEl.textContent = j.error;
      })
      .catch(function () { if (mine === seq) countEl.textContent = '—'; });
  }
  function start() {
    var initial = [];
    try { initial = JSON.parse(hidden.value || '[]'); } catch (e) { initial = []; }
    var kept = document.getElementById('form-retry');  // a refused save comes back with what was built
    if (kept) {
      try {
        var retry = JSON.parse(kept.textContent);
        if (retry.action === form.getAttribute('action') && retry.values && retry.values.conditions_json) {
          initial = JSON.parse(retry.values.conditions_json[0]);
        }
      } catch (e) { /* keep the saved conditions */ }
    }
    initial.forEach(row);
    document.getElementById('seg-add').addEventListener('click', function () { row(); changed(); });
    target.addEventListener('change', function () { box.innerHTML = ''; changed(); });
    match.addEventListener('change', changed);
    changed();
  }
  // the kept form (#form-retry) comes after the page's content
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
})();
