/* 数据导入: while an import is queued or running, poll its status once a second, move the progress
   bar and the counts, and reload the page when it ends (to show the result file and the rows). */
(function () {
  var box = document.getElementById('import-progress');
  if (!box) return;
  var status = box.dataset.status;
  if (status !== 'queued' && status !== 'running') return;
  function poll() {
    fetch(box.dataset.statusUrl, { credentials: 'same-origin', headers: { 'Accept': 'application/json' } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (j) {
        document.getElementById('import-bar').value = j.progress;
        document.getElementById('import-processed').textContent = j.processed;
        document.getElementById('import-state').textContent = j.status_label;
        var res = j.result || {};
        ['created', 'collisions', 'errors'].forEach(function (k) {
          var el = box.querySelector('[data-count="' + k + '"]');
          if (el && res[k] !== undefined) el.textContent = res[k];
        });
        if (j.status === 'done' || j.status === 'failed') { window.location.reload(); return; }
        setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 500);
})();
