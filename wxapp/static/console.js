/* The console's tables become cards on a phone (console.css, max-width 640px): each body cell is labelled with its
   column's header, so a card reads "客户：杭州西湖茶业有限公司". Tables without a header stay as they are. */
(function () {
  function label(table) {
    var head = table.tHead && table.tHead.rows[0];
    if (!head) { return; }
    var names = [];
    Array.prototype.forEach.call(head.cells, function (th) {
      for (var i = 0; i < (th.colSpan || 1); i++) { names.push(th.textContent.trim()); }
    });
    Array.prototype.forEach.call(table.tBodies, function (body) {
      Array.prototype.forEach.call(body.rows, function (tr) {
        var col = 0;
        Array.prototype.forEach.call(tr.cells, function (td) {
          if (!td.hasAttribute('data-label') && (td.colSpan || 1) === 1) { td.setAttribute('data-label', names[col] || ''); }
          col += td.colSpan || 1;
        });
      });
    });
    table.classList.add('cards');
  }
  function run() { Array.prototype.forEach.call(document.querySelectorAll('main table'), label); }
  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', run); } else { run(); }
  window.wxcrmLabelTables = run;  /* pages that add rows later call it again */
})();
