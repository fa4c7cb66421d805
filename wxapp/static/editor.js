/* The rich-text editor (Quill 2, vendored) for 营销素材: each <div class="rich-editor" data-input="ID"> edits the
   HTML of the <textarea id="ID"> its form posts (the semantic HTML: real <ul>/<ol>, no editor markup; the server
   cleans it again). Only formats the sanitiser keeps and the CSP allows (no inline colours).
   Nothing typed is lost to a refused save: the text is kept in sessionStorage when the form is sent and put back
   when the page comes back with an error; a page without an error clears it. */
(function () {
  if (!window.Quill) return;
  var TOOLBAR = [[{ header: [2, 3, false] }], ['bold', 'italic', 'underline'], [{ list: 'ordered' }, { list: 'bullet' }],
                 ['blockquote', 'link'], ['clean']];
  function start() {
    var refused = !!document.querySelector('[role=alert]');
    document.querySelectorAll('.rich-editor').forEach(function (box) {
      var input = document.getElementById(box.dataset.input), form = input.form;
      var key = 'wxcrm-draft:' + form.getAttribute('action');
      var quill = new Quill(box, { theme: 'snow', modules: { toolbar: TOOLBAR }, placeholder: box.dataset.placeholder || '' });
      var kept = refused ? window.sessionStorage.getItem(key) : null, edited = false;
      if (kept !== null) {
        quill.clipboard.dangerouslyPasteHTML(kept);
        edited = true;
      } else {
        window.sessionStorage.removeItem(key);
      }
      quill.on('text-change', function () { edited = true; });
      window.wxcrmEditors = window.wxcrmEditors || {};
      window.wxcrmEditors[box.dataset.input] = quill;
      form.addEventListener('submit', function () {
        // untouched, the body goes back as it came (Quill would drop what it has no format for, such as <hr>)
        if (!edited) return;
        // getSemanticHTML writes every space as &nbsp;, which would stop text wrapping on the phone
        var html = quill.getLength() > 1 ? quill.getSemanticHTML().replace(/&nbsp;/g, ' ') : '';
        input.value = html;
        try { window.sessionStorage.setItem(key, html); } catch (e) { /* storage full: the server keeps short texts */ }
      });
    });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
})();
